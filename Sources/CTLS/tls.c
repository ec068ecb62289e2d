#include "CTLS.h"

#include <crypt.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

struct ctls_context {
  SSL_CTX *ctx;
};

struct ctls_session {
  SSL *ssl;
};

/// Fills `error` with `what` and the oldest queued OpenSSL error, and empties the queue
/// (it is per thread, and a stale entry would be blamed on the next connection).
static void report(char *error, size_t size, const char *what) {
  unsigned long code = ERR_peek_error();
  char reason[256] = "";
  if (code != 0) ERR_error_string_n(code, reason, sizeof reason);
  if (error && size) {
    if (reason[0]) snprintf(error, size, "%s: %s", what, reason);
    else snprintf(error, size, "%s", what);
  }
  ERR_clear_error();
}

static int version_constant(int version) {
  switch (version) {
  case 10: return TLS1_VERSION;
  case 11: return TLS1_1_VERSION;
  case 12: return TLS1_2_VERSION;
  case 13: return TLS1_3_VERSION;
  default: return 0;
  }
}

/// Accepts any client certificate: RequestClientCert and RequireAnyClientCert ask for one
/// without checking it against a CA, as Go's crypto/tls does for those modes.
static int accept_any(int preverify, X509_STORE_CTX *store) {
  (void)preverify;
  (void)store;
  return 1;
}

ctls_context *ctls_context_new(const char *cert_file, const char *key_file, const char *ca_file, int client_auth,
                               int min_version, int max_version, const char *ciphers, const char *groups,
                               char *error, size_t error_size) {
  ERR_clear_error();
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) {
    report(error, error_size, "cannot create a TLS context");
    return NULL;
  }
  char what[600];
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
    snprintf(what, sizeof what, "cannot load cert_file %s", cert_file);
    goto fail;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
    snprintf(what, sizeof what, "cannot load key_file %s", key_file);
    goto fail;
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    snprintf(what, sizeof what, "key_file %s does not match cert_file %s", key_file, cert_file);
    goto fail;
  }
  if (SSL_CTX_set_min_proto_version(ctx, version_constant(min_version)) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, version_constant(max_version)) != 1) {
    snprintf(what, sizeof what, "unsupported TLS version range");
    goto fail;
  }
  if (ciphers && SSL_CTX_set_cipher_list(ctx, ciphers) != 1) {
    snprintf(what, sizeof what, "cipher_suites refused by OpenSSL (%s)", ciphers);
    goto fail;
  }
  if (groups && SSL_CTX_set1_groups_list(ctx, groups) != 1) {
    snprintf(what, sizeof what, "curve_preferences refused by OpenSSL (%s)", groups);
    goto fail;
  }
  if (ca_file) {
    if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
      snprintf(what, sizeof what, "cannot load client_ca_file %s", ca_file);
      goto fail;
    }
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca_file);
    if (names) SSL_CTX_set_client_CA_list(ctx, names);
  }
  switch (client_auth) {
  case CTLS_NO_CLIENT_CERT: SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); break;
  case CTLS_REQUEST_CLIENT_CERT: SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_any); break;
  case CTLS_REQUIRE_ANY_CLIENT_CERT:
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, accept_any);
    break;
  case CTLS_VERIFY_CLIENT_CERT_IF_GIVEN: SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL); break;
  case CTLS_REQUIRE_AND_VERIFY_CLIENT_CERT:
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    break;
  default:
    snprintf(what, sizeof what, "unknown client_auth_type %d", client_auth);
    goto fail;
  }
  // Session resumption with client certificates needs an id context, or OpenSSL fails it.
  static const unsigned char id[] = "netprobe_exporter";
  SSL_CTX_set_session_id_context(ctx, id, sizeof id - 1);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
  // Partial writes with a buffer that may move between retries (Swift arrays), and no
  // read/write buffers kept for idle keep-alive connections.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
  ctls_context *context = malloc(sizeof *context);
  if (!context) {
    SSL_CTX_free(ctx);
    if (error && error_size) snprintf(error, error_size, "out of memory");
    return NULL;
  }
  context->ctx = ctx;
  ERR_clear_error();
  return context;
fail:
  report(error, error_size, what);
  SSL_CTX_free(ctx);
  return NULL;
}

void ctls_context_free(ctls_context *context) {
  if (!context) return;
  SSL_CTX_free(context->ctx);
  free(context);
}

ctls_session *ctls_session_new(ctls_context *context, int fd) {
  ctls_session *session = malloc(sizeof *session);
  if (!session) return NULL;
  session->ssl = SSL_new(context->ctx);  // takes a reference to the context
  if (!session->ssl || SSL_set_fd(session->ssl, fd) != 1) {
    if (session->ssl) SSL_free(session->ssl);
    free(session);
    ERR_clear_error();
    return NULL;
  }
  SSL_set_accept_state(session->ssl);
  return session;
}

void ctls_session_free(ctls_session *session) {
  if (!session) return;
  SSL_free(session->ssl);
  free(session);
}

/// Maps the result of an SSL_ call to a CTLS_ code.
static int outcome(ctls_session *session, int result, const char *what, char *error, size_t error_size) {
  int code = SSL_get_error(session->ssl, result);
  switch (code) {
  case SSL_ERROR_WANT_READ: return CTLS_WANT_READ;
  case SSL_ERROR_WANT_WRITE: return CTLS_WANT_WRITE;
  case SSL_ERROR_ZERO_RETURN:
    ERR_clear_error();
    return CTLS_CLOSED;
  case SSL_ERROR_SYSCALL:
    if (ERR_peek_error() == 0) {
      // End of stream without close_notify, or a socket error.
      int saved = errno;
      ERR_clear_error();
      if (result == 0 || saved == 0 || saved == ECONNRESET || saved == EPIPE) return CTLS_CLOSED;
      if (error && error_size) snprintf(error, error_size, "%s: %s", what, strerror(saved));
      return CTLS_ERROR;
    }
    report(error, error_size, what);
    return CTLS_ERROR;
  default: {
    unsigned long first = ERR_peek_error();
    if (ERR_GET_LIB(first) == ERR_LIB_SSL && ERR_GET_REASON(first) == SSL_R_HTTP_REQUEST) {
      ERR_clear_error();
      return CTLS_PLAIN_HTTP;
    }
    report(error, error_size, what);
    return CTLS_ERROR;
  }
  }
}

int ctls_handshake(ctls_session *session, char *error, size_t error_size) {
  ERR_clear_error();
  errno = 0;
  int result = SSL_do_handshake(session->ssl);
  if (result == 1) return 1;
  return outcome(session, result, "TLS handshake", error, error_size);
}

int ctls_read(ctls_session *session, void *buffer, int count, char *error, size_t error_size) {
  ERR_clear_error();
  errno = 0;
  int result = SSL_read(session->ssl, buffer, count);
  if (result > 0) return result;
  return outcome(session, result, "TLS read", error, error_size);
}

int ctls_write(ctls_session *session, const void *buffer, int count, char *error, size_t error_size) {
  ERR_clear_error();
  errno = 0;
  int result = SSL_write(session->ssl, buffer, count);
  if (result > 0) return result;
  return outcome(session, result, "TLS write", error, error_size);
}

int ctls_pending(ctls_session *session) { return SSL_pending(session->ssl); }

void ctls_shutdown(ctls_session *session) {
  // Quiet: a peer that already went away makes this fail, which does not matter here.
  if (SSL_is_init_finished(session->ssl)) (void)SSL_shutdown(session->ssl);
  ERR_clear_error();
}

const char *ctls_version(ctls_session *session) { return SSL_get_version(session->ssl); }

int ctls_crypt_verify(const char *hash, const char *password, size_t password_length) {
  // A NUL inside the password would cut it short for crypt(3): such a password never matches.
  if (memchr(password, 0, password_length)) return 0;
  char *copy = malloc(password_length + 1);
  struct crypt_data *data = calloc(1, sizeof *data);
  if (!copy || !data) {
    free(copy);
    free(data);
    return -1;
  }
  memcpy(copy, password, password_length);
  copy[password_length] = 0;
  const char *result = crypt_r(copy, hash, data);
  int verdict;
  size_t length = strlen(hash);
  // libxcrypt returns a string starting with '*' for an unusable setting.
  if (!result || result[0] == '*') verdict = -1;
  else verdict = strlen(result) == length && CRYPTO_memcmp(result, hash, length) == 0;
  OPENSSL_cleanse(copy, password_length);
  OPENSSL_cleanse(data, sizeof *data);
  free(copy);
  free(data);
  return verdict;
}

int ctls_sha256(const void *bytes, size_t count, unsigned char *digest) {
  unsigned int length = 32;
  return EVP_Digest(bytes, count, digest, &length, EVP_sha256(), NULL) == 1 ? 0 : -1;
}

int ctls_random(void *bytes, size_t count) { return RAND_bytes(bytes, (int)count) == 1 ? 0 : -1; }
