"""The local Picsellia API: the part of Picsellia's REST API a processing written
with the picsellia SDK uses, served by the engine to the runs that ask for it
(docs/picsellia-api.md). Importing this package loads nothing heavy: the server
modules (starlette, uvicorn) load when the first such run starts."""
