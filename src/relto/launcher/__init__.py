"""Developer launchers: four federated demo nodes on loopback, each with its own
OpenID provider (``relto federation demo``, ``make federation``).

Not part of a deployed node: these start processes on this machine for a person
trying relto, and for the tests. :mod:`.processes` starts and stops child process
groups; :mod:`.idp` installs and runs the pinned ``oidc-provider`` (npm) of
``tools/federation-idp``; :mod:`.federation` prepares and runs the four nodes.
"""
