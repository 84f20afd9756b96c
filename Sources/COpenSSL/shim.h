// System OpenSSL (Debian's libssl3), found through pkg-config "openssl".
#ifndef TAILGATE_COPENSSL_SHIM_H
#define TAILGATE_COPENSSL_SHIM_H
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#endif
