"""The pure revocation package's tests need only the PKI (shared with tests/dataplane/revocation).

(tests/revocation is a package named `revocation`: no standard-library module has that name.)
"""

from support.revocation_pki import pki as pki  # the session fixture
