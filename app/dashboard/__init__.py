"""The planning dashboard: one page served by the API itself, with plotly.js from the plotly package."""
