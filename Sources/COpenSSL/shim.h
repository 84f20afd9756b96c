// System OpenSSL (Debian's libssl3), found through pkg-config "openssl".
#ifndef TAILGATE_COPENSSL_SHIM_H
#define TAILGATE_COPENSSL_SHIM_H
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

// Function-like macros Swift cannot import, as static inline wrappers.

/// SSL_set_tlsext_host_name: the server name (SNI) a client sends.
static inline int tailgate_SSL_set_tlsext_host_name(SSL *ssl, const char *name) {
    return (int)SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, (void *)name);
}

/// SSL_CTX_set_min_proto_version.
static inline int tailgate_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_ctrl(ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, version, NULL);
}

#endif
