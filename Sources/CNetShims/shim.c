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
#include <isa-l/igzip_lib.h>
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

/// gzip through ISA-L's igzip: the same format as zlib's, at about five times zlib level 1's
/// speed on a metrics body (0.09 s against 0.47 s for 43 MB here), so a compressed scrape
/// costs little more than a plain one. `level` is igzip's, 0 to 3.
struct cns_gzip {
  struct isal_zstream stream;
  uint8_t *level_buffer;
};

static uint32_t cns_gzip_level_buffer_size(int level) {
  switch (level) {
  case 0: return ISAL_DEF_LVL0_DEFAULT;
  case 1: return ISAL_DEF_LVL1_DEFAULT;
  case 2: return ISAL_DEF_LVL2_DEFAULT;
  default: return ISAL_DEF_LVL3_DEFAULT;
  }
}

void *cns_gzip_begin(int level) {
  if (level < 0 || level > ISAL_DEF_MAX_LEVEL) return NULL;
  struct cns_gzip *gzip = calloc(1, sizeof *gzip);
  if (!gzip) return NULL;
  uint32_t size = cns_gzip_level_buffer_size(level);
  gzip->level_buffer = malloc(size);
  if (!gzip->level_buffer) {
    free(gzip);
    return NULL;
  }
  isal_deflate_init(&gzip->stream);
  gzip->stream.level = (uint32_t)level;
  gzip->stream.level_buf = gzip->level_buffer;
  gzip->stream.level_buf_size = size;
  gzip->stream.gzip_flag = IGZIP_GZIP;
  gzip->stream.flush = NO_FLUSH;
  return gzip;
}

int cns_gzip_step(void *opaque, const uint8_t *input, size_t length, size_t *consumed, uint8_t *output, size_t capacity,
                  int finish, size_t *written) {
  struct cns_gzip *gzip = opaque;
  struct isal_zstream *stream = &gzip->stream;
  // igzip counts in 32 bits: a larger input is taken in parts, as zlib's callers expect.
  uint32_t input_part = length > UINT32_MAX ? UINT32_MAX : (uint32_t)length;
  uint32_t output_part = capacity > UINT32_MAX ? UINT32_MAX : (uint32_t)capacity;
  stream->next_in = (uint8_t *)input;
  stream->avail_in = input_part;
  stream->next_out = output;
  stream->avail_out = output_part;
  stream->end_of_stream = finish && input_part == length ? 1 : 0;
  int rc = isal_deflate(stream);
  *consumed = input_part - stream->avail_in;
  *written = output_part - stream->avail_out;
  if (rc != COMP_OK) return -1;
  return stream->internal_state.state == ZSTATE_END ? 1 : 0;
}

void cns_gzip_end(void *opaque) {
  struct cns_gzip *gzip = opaque;
  free(gzip->level_buffer);
  free(gzip);
}

#ifndef NETPROBE_REVISION
#define NETPROBE_REVISION "unknown"
#endif
const char *cns_build_revision(void) { return NETPROBE_REVISION; }

int cns_malloc_trim(size_t pad) { return malloc_trim(pad); }
int cns_set_mmap_threshold(int bytes) { return mallopt(M_MMAP_THRESHOLD, bytes); }
int cns_set_arena_max(int count) { return mallopt(M_ARENA_MAX, count); }

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
