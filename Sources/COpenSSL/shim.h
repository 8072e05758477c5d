#ifndef COPENSSL_SHIM_H
#define COPENSSL_SHIM_H
/* HMACSHA256 uses the low-level SHA256_* calls, deprecated (not removed) in OpenSSL 3. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/sha.h>
#include <openssl/rand.h>
#endif
