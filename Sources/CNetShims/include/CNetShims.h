// CNetShims: the C that Swift cannot import directly — function-like macros (CMSG_*,
// deflateInit2), GNU-only calls (accept4) — each re-exported under a `cns_` prefix.
#ifndef CNETSHIMS_H
#define CNETSHIMS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/// accept4(2) with flags; Glibc's Swift module is built without _GNU_SOURCE.
int cns_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);

#include <poll.h>

/// pthread_setname_np(3) on the calling thread (GNU-only); names longer than 15 bytes are cut.
int cns_set_thread_name(const char *name);
/// prctl(PR_SET_TIMERSLACK) on the calling thread (prctl is variadic, which Swift cannot call).
int cns_set_timer_slack(unsigned long nanoseconds);
/// setsockopt(TCP_NODELAY, 1): <netinet/tcp.h>, imported into Swift, hides SOCK_* of the
/// files that import only Glibc.
int cns_set_tcp_nodelay(int fd);
/// ppoll(2) with a timeout in nanoseconds (negative: none), for loops that pace below a
/// millisecond; also GNU-only.
int cns_ppoll(struct pollfd *fds, unsigned long count, int64_t timeout_ns);

/// ioctl(fd, SIOCOUTQ, &bytes): bytes a TCP socket holds in its send queue that the peer
/// has not acknowledged (TIOCOUTQ for sockets); ioctl is variadic, which Swift cannot call.
/// Returns 0, or -1 with errno.
int cns_socket_outq(int fd, int *bytes);

/// eventfd(2) with EFD_CLOEXEC | EFD_NONBLOCK; <sys/eventfd.h> is not in Glibc's module.
int cns_eventfd_nonblocking(void);

/// CMSG_FIRSTHDR / CMSG_NXTHDR / CMSG_DATA / CMSG_SPACE / CMSG_LEN.
struct cmsghdr *cns_cmsg_firsthdr(struct msghdr *msg);
struct cmsghdr *cns_cmsg_nxthdr(struct msghdr *msg, struct cmsghdr *cmsg);
unsigned char *cns_cmsg_data(struct cmsghdr *cmsg);
size_t cns_cmsg_space(size_t length);
size_t cns_cmsg_len(size_t length);

/// gzip through ISA-L's igzip (a member with header and trailer, igzip level 0..3), begun
/// with `cns_gzip_begin`; NULL for another level or when memory is short.
void *cns_gzip_begin(int level);
/// Streaming: deflates up to `length` input bytes into `output` (room for `capacity`),
/// ending the stream when `finish`. Sets *consumed and *written; returns 0 to go on, 1 when
/// the stream has ended (finish), -1 on an igzip error. `cns_gzip_end` frees the stream.
int cns_gzip_step(void *stream, const uint8_t *input, size_t length, size_t *consumed, uint8_t *output, size_t capacity,
                  int finish, size_t *written);
void cns_gzip_end(void *stream);

/// malloc_trim(3) from <malloc.h>, which Swift's Glibc module does not include.
int cns_malloc_trim(size_t pad);

/// mallopt(M_MMAP_THRESHOLD, bytes): allocations above `bytes` are mmapped (and so
/// returned to the kernel when freed) whatever glibc's dynamic threshold would say.
int cns_set_mmap_threshold(int bytes);

/// mallopt(M_ARENA_MAX, count): at most `count` malloc arenas, whatever the thread count.
int cns_set_arena_max(int count);

/// The source revision `make` passes as -DNETPROBE_REVISION, or "unknown".
const char *cns_build_revision(void);

#endif
