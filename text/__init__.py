"""The text front end, shared by the API (the preview route) and the workers: normalisation and chunking.

Torch-free and worker-free, so the API can show exactly the chunks an engine will receive.
"""
