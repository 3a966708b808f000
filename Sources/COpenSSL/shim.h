#ifndef COPENSSL_SHIM_H
#define COPENSSL_SHIM_H
#include <openssl/evp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/opensslv.h>

/// BIO_get_mem_data is a function-like macro, which Swift cannot import.
static inline long COpenSSL_BIO_get_mem_data(BIO *bio, char **data) {
    return BIO_get_mem_data(bio, data);
}

/// The NID of Ed25519 (EVP_PKEY_ED25519 is a macro of a macro; spelled out here for Swift).
static inline int COpenSSL_EVP_PKEY_ED25519(void) { return EVP_PKEY_ED25519; }

/// A PEM password callback that refuses: imprint never prompts on a terminal for a key passphrase.
static inline int COpenSSL_no_password(char *buf, int size, int rwflag, void *u) {
    (void)buf; (void)size; (void)rwflag; (void)u;
    return -1;
}
#endif
