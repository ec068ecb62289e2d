// CTLS: the OpenSSL 3 server side of TLS and libcrypt's bcrypt check, behind a few plain C
// functions, each prefixed `ctls_`. OpenSSL's API is mostly macros (SSL_CTX_set_min_proto_version,
// SSL_CTX_set_mode, ...) and out-of-band error queues, which Swift cannot call or read safely;
// here every call returns a plain code and, on failure, a sentence in a caller's buffer.
#ifndef CTLS_H
#define CTLS_H

#include <stddef.h>

/// An OpenSSL SSL_CTX: the certificate, key and policies every new connection takes.
typedef struct ctls_context ctls_context;
/// An OpenSSL SSL on one accepted, non-blocking socket.
typedef struct ctls_session ctls_session;

/// client_auth_type of the exporter-toolkit web configuration.
enum {
  CTLS_NO_CLIENT_CERT = 0,
  CTLS_REQUEST_CLIENT_CERT = 1,
  CTLS_REQUIRE_ANY_CLIENT_CERT = 2,
  CTLS_VERIFY_CLIENT_CERT_IF_GIVEN = 3,
  CTLS_REQUIRE_AND_VERIFY_CLIENT_CERT = 4,
};

/// Protocol versions: TLS 1.0 to 1.3 as 10 to 13.
/// Builds a server context. `ca_file`, `ciphers` (OpenSSL names, ':'-separated, TLS 1.2 and
/// below) and `groups` (OpenSSL names, ':'-separated) may be NULL. Returns NULL with a message
/// in `error` when a file cannot be read, the key does not match the certificate, or a list
/// is refused.
ctls_context *ctls_context_new(const char *cert_file, const char *key_file, const char *ca_file, int client_auth,
                               int min_version, int max_version, const char *ciphers, const char *groups,
                               char *error, size_t error_size);
void ctls_context_free(ctls_context *context);

/// Results of ctls_handshake, ctls_read and ctls_write.
enum {
  CTLS_WANT_READ = -1,   // call again when the socket is readable
  CTLS_WANT_WRITE = -2,  // call again when the socket is writable
  CTLS_CLOSED = -3,      // the peer closed (close_notify or end of stream)
  CTLS_ERROR = -4,       // a protocol or I/O error; the message says which
  CTLS_PLAIN_HTTP = -5,  // the handshake met a plain-text HTTP request
};

/// A session on `fd` (already non-blocking), in the server role. NULL when out of memory.
/// The session holds a reference to the context, which may be freed before it.
ctls_session *ctls_session_new(ctls_context *context, int fd);
void ctls_session_free(ctls_session *session);
/// Continues the handshake: 1 once complete, else one of the CTLS_ codes.
int ctls_handshake(ctls_session *session, char *error, size_t error_size);
/// Decrypted bytes read (> 0), or a CTLS_ code.
int ctls_read(ctls_session *session, void *buffer, int count, char *error, size_t error_size);
/// Plain bytes accepted (> 0), or a CTLS_ code. After WANT_*, call again with the same bytes.
int ctls_write(ctls_session *session, const void *buffer, int count, char *error, size_t error_size);
/// Decrypted bytes OpenSSL holds that poll(2) cannot see.
int ctls_pending(ctls_session *session);
/// Sends close_notify without waiting for the peer's (best effort, never blocks).
void ctls_shutdown(ctls_session *session);
/// The negotiated protocol, e.g. "TLSv1.3".
const char *ctls_version(ctls_session *session);

/// crypt_r(3) (libxcrypt: $2a$, $2b$, $2y$ bcrypt) of `password` with `hash` as setting, compared
/// in constant time: 1 when it matches, 0 when not, -1 when the hash is not one crypt knows.
int ctls_crypt_verify(const char *hash, const char *password, size_t password_length);
/// SHA-256 of `count` bytes into `digest` (32 bytes); 0 on success.
int ctls_sha256(const void *bytes, size_t count, unsigned char *digest);
/// Random bytes from OpenSSL's generator; 0 on success.
int ctls_random(void *bytes, size_t count);

#endif
