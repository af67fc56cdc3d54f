"""The host side of ``hybrid-edge deploy``: signing, SSH transport, provisioning and fleet rollout.

Needs the ``deploy`` extra (asyncssh, cryptography); boards never import this package.
"""
