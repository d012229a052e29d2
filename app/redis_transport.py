"""Kombu's Redis transport, made to survive acknowledging a message whose connection is gone.

With task_acks_late, a task that was received before the broker went away and ends after the
worker reconnected is acknowledged on its old channel, from the worker's event loop. Kombu's
channel then builds a client from a closed connection and raises AttributeError ('NoneType'
object has no attribute 'hostname'), which is no connection error: it leaves the loop and the
worker shuts down with "Unrecoverable error" (CI's chaos test lost its studies worker this way,
and with it every allocation). Raised as a connection error instead, Celery logs "Couldn't ack"
and goes on; the unacknowledged message comes back after the visibility timeout, or not at all
when the broker lost it, and the database sweep covers either case (app/trials/recovery.py).

app/queues.py names Transport as the broker_transport of a redis:// broker.
"""

from __future__ import annotations

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> dict:
        transport = self.connection
        if transport is None or transport.client is None:
            raise RedisConnectionError("this channel's broker connection was closed (a reconnect replaced it)")
        return super()._connparams(asynchronous=asynchronous)


class Transport(kombu_redis.Transport):
    Channel = Channel
