#ifndef _GNU_SOURCE
#error "CNetShims must be compiled with _GNU_SOURCE (set in Package.swift)"
#endif
#include "CNetShims.h"
#include <sys/socket.h>
#include <malloc.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>
#include <sys/prctl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <zlib.h>
#include <stdlib.h>

int cns_eventfd_nonblocking(void) { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }

int cns_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
  return accept4(fd, addr, len, flags);
}

int cns_ppoll(struct pollfd *fds, unsigned long count, int64_t timeout_ns) {
  if (timeout_ns < 0) return ppoll(fds, count, NULL, NULL);
  struct timespec timeout = {.tv_sec = timeout_ns / 1000000000, .tv_nsec = timeout_ns % 1000000000};
  return ppoll(fds, count, &timeout, NULL);
}

struct cmsghdr *cns_cmsg_firsthdr(struct msghdr *msg) { return CMSG_FIRSTHDR(msg); }
struct cmsghdr *cns_cmsg_nxthdr(struct msghdr *msg, struct cmsghdr *cmsg) { return CMSG_NXTHDR(msg, cmsg); }
unsigned char *cns_cmsg_data(struct cmsghdr *cmsg) { return CMSG_DATA(cmsg); }
size_t cns_cmsg_space(size_t length) { return CMSG_SPACE(length); }
size_t cns_cmsg_len(size_t length) { return CMSG_LEN(length); }

void *cns_gzip_begin(int level) {
  z_stream *stream = calloc(1, sizeof *stream);
  if (!stream) return NULL;
  if (deflateInit2(stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    free(stream);
    return NULL;
  }
  return stream;
}

int cns_gzip_step(void *opaque, const uint8_t *input, size_t length, size_t *consumed, uint8_t *output, size_t capacity,
                  int finish, size_t *written) {
  z_stream *stream = opaque;
  stream->next_in = (Bytef *)input;
  stream->avail_in = (uInt)length;
  stream->next_out = output;
  stream->avail_out = (uInt)capacity;
  int rc = deflate(stream, finish ? Z_FINISH : Z_NO_FLUSH);
  *consumed = length - stream->avail_in;
  *written = capacity - stream->avail_out;
  if (rc == Z_STREAM_END) return 1;
  return rc == Z_OK || rc == Z_BUF_ERROR ? 0 : -1;
}

void cns_gzip_end(void *opaque) {
  z_stream *stream = opaque;
  deflateEnd(stream);
  free(stream);
}

#ifndef NETPROBE_REVISION
#define NETPROBE_REVISION "unknown"
#endif
const char *cns_build_revision(void) { return NETPROBE_REVISION; }

int cns_malloc_trim(size_t pad) { return malloc_trim(pad); }
int cns_set_mmap_threshold(int bytes) { return mallopt(M_MMAP_THRESHOLD, bytes); }

int cns_set_timer_slack(unsigned long nanoseconds) { return prctl(PR_SET_TIMERSLACK, nanoseconds, 0, 0, 0); }

int cns_set_tcp_nodelay(int fd) {
  int on = 1;
  return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
}

int cns_socket_outq(int fd, int *bytes) {
  return ioctl(fd, SIOCOUTQ, bytes);
}

int cns_set_thread_name(const char *name) {
  char cut[16];
  strncpy(cut, name, sizeof cut - 1);
  cut[sizeof cut - 1] = 0;
  return pthread_setname_np(pthread_self(), cut);
}
