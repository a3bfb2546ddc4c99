"""A small OpenID Connect provider for development and the tests.

One implementation for two uses: ``make run`` mounts it at ``/dev-idp`` (development
only) as the provider ``dev``, so that "Continue with …" works offline; the test suite
runs it as its own Flask app on a free port and drives its ``Quirks`` to make it
misbehave. Nothing in the portal's own sign-in code knows about it.
"""
