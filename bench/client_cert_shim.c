/* Makes every TLS client context of a program present a client certificate: h2load (Debian's
 * nghttp2-client) has no option for one, and the bench must measure HTTP/2 with the same full mTLS
 * handshake as HTTP/1.1 (a binding that does not ask for a certificate would skip the work being
 * measured). bench/h2load.py compiles this at run time and loads it with LD_PRELOAD; the chain and
 * key files come from BENCH_CLIENT_CERT and BENCH_CLIENT_KEY. It needs no OpenSSL headers: the
 * three functions are looked up in the libssl the program already uses. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

typedef void *(*ctx_new_fn)(const void *method);
typedef int (*use_chain_fn)(void *ctx, const char *file);
typedef int (*use_key_fn)(void *ctx, const char *file, int type);

enum { FILETYPE_PEM = 1 }; /* SSL_FILETYPE_PEM */

void *SSL_CTX_new(const void *method) {
    ctx_new_fn real_new = (ctx_new_fn)dlsym(RTLD_NEXT, "SSL_CTX_new");
    void *ctx = real_new(method);
    const char *cert = getenv("BENCH_CLIENT_CERT");
    const char *key = getenv("BENCH_CLIENT_KEY");
    if (ctx == NULL || cert == NULL || key == NULL) {
        return ctx;
    }
    use_chain_fn use_chain = (use_chain_fn)dlsym(RTLD_NEXT, "SSL_CTX_use_certificate_chain_file");
    use_key_fn use_key = (use_key_fn)dlsym(RTLD_NEXT, "SSL_CTX_use_PrivateKey_file");
    /* A load without the certificate would measure something else: stop instead. */
    if (use_chain == NULL || use_key == NULL || use_chain(ctx, cert) != 1 ||
        use_key(ctx, key, FILETYPE_PEM) != 1) {
        fprintf(stderr, "client_cert_shim: cannot use %s and %s\n", cert, key);
        exit(2);
    }
    return ctx;
}
