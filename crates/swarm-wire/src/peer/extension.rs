//! BEP 10 extension handshake, BEP 9 ut_metadata, BEP 11 ut_pex. CONTRACT: keep the names.
