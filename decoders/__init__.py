"""protoscope: the plugin contract, the registry and the protocol decoders."""

from protoscope.decoders.codecache import install

install()  # before any dataclass of ours is defined: see codecache.py
