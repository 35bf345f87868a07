"""The one thing pyproject.toml cannot say without setuptools' experimental `ext-modules` table:
the optional C extensions: the `--report calls` bulk path (decoders/grpc/_bulk.c) and the pcap
record walk (captures/_walk.c).

`optional=True`: on a machine without a C compiler the install goes on without it, and the Python
decoders do all the work (only slower; see README "Performance").
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "protoscope.decoders.grpc._bulk",
            ["decoders/grpc/_bulk.c"],
            optional=True,
            extra_compile_args=["-O2"],
        ),
        Extension(
            "protoscope.captures._walk",
            ["captures/_walk.c"],
            optional=True,
            extra_compile_args=["-O2"],
        ),
    ]
)
