"""The API's OpenAPI document (document.py assembles it from components.py, paths.py,
problems.py, examples.py and webhooks.py) and the pages that render it (handlers.py, with the
files of assets.py)."""
