"""The session's real Label Studio server (``label_studio``, ``review_home``) comes from
tests/labelstudio_server.py, a plugin of the root conftest shared with tests/reliability."""
