"""Grid studies: the paper's grid for a task (budgets x weak shares x methods x seeds) run as
stored trials (`grid`), and the `/studies` routes and bodies."""
