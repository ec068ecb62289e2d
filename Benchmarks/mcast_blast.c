/*
 * mcast_blast: sends a paced multicast UDP stream for the multicast reception benchmark
 * (Benchmarks/multicast_bench.py). Python cannot send 200,000+ datagrams a second; this can.
 *
 *   mcast_blast GROUP PORT IFNAME RATE SECONDS [START [SIZE [BATCH]]]
 *
 * Sends RATE datagrams a second for SECONDS to GROUP:PORT out of interface IFNAME
 * (IP_MULTICAST_IF by index, TTL 1, no loopback), each SIZE bytes (default 64) with a
 * sequence number at offset 0 (u64, big-endian), counting up from START (default 0).
 *
 * Pacing: datagram k is due at t0 + k / RATE on CLOCK_MONOTONIC. The sender sleeps
 * (clock_nanosleep, absolute, timer slack 1 ns instead of the default 50 us) and on each
 * wake-up sends every datagram due by then, at most BATCH (default 8, at most 64) in one
 * sendmmsg(2). It wakes when the next datagram is due, or, when they are less than 50 us
 * apart, when enough are due to fill a wake-up every 50 us (at most BATCH): a wake-up
 * costs several microseconds in a VM, so one per datagram would cap the rate. So at
 * 25,000/s every datagram leaves on time alone; at 100,000/s they leave 5 at a time
 * every 50 us; at 200,000/s 8 every 40 us. The average rate is exact and no burst is
 * longer than BATCH. It never spins, leaving the cores to the receiver. If it falls
 * behind it catches up in bursts of BATCH, and reports by how much it fell behind.
 *
 * Prints one line of JSON on stdout: datagrams sent, the rate achieved, the largest lag
 * behind the schedule, the sendmmsg calls made, the send errors (ENOBUFS, EAGAIN) retried
 * and its own CPU time (which includes the receiving side of the veth: the kernel delivers
 * to the receiver's socket in the sender's softirq). Exit status 0 when every datagram was sent, 1 on a usage or socket error.
 * SIGINT/SIGTERM stop it early (it still prints what it sent).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_BATCH 64

static volatile sig_atomic_t stop_requested;

static void on_signal(int signum) { (void)signum; stop_requested = 1; }

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void sleep_until(int64_t when) {
  struct timespec t = {.tv_sec = when / 1000000000LL, .tv_nsec = when % 1000000000LL};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL) == EINTR && !stop_requested) {
  }
}

static void put_u64_be(unsigned char *p, uint64_t v) {
  for (int i = 7; i >= 0; i--) { p[i] = (unsigned char)(v & 0xff); v >>= 8; }
}

static int fail(const char *what) {
  fprintf(stderr, "mcast_blast: %s: %s\n", what, strerror(errno));
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 6 || argc > 9) {
    fprintf(stderr, "usage: %s GROUP PORT IFNAME RATE SECONDS [START [SIZE [BATCH]]]\n", argv[0]);
    return 1;
  }
  const char *group = argv[1];
  int port = atoi(argv[2]);
  const char *ifname = argv[3];
  double rate = atof(argv[4]);
  double seconds = atof(argv[5]);
  uint64_t start = argc > 6 ? strtoull(argv[6], NULL, 10) : 0;
  int size = argc > 7 ? atoi(argv[7]) : 64;
  int batch = argc > 8 ? atoi(argv[8]) : 8;
  struct in_addr group_address;
  if (inet_pton(AF_INET, group, &group_address) != 1 || (ntohl(group_address.s_addr) >> 24) != 239) {
    fprintf(stderr, "mcast_blast: %s is not an administratively scoped group (239.0.0.0/8)\n", group);
    return 1;
  }
  if (port <= 0 || port > 65535 || rate <= 0 || seconds <= 0 || size < 8 || size > 1472 || batch < 1 ||
      batch > MAX_BATCH) {
    fprintf(stderr, "mcast_blast: bad argument (port 1-65535, rate > 0, seconds > 0, size 8-1472, batch 1-%d)\n",
            MAX_BATCH);
    return 1;
  }
  unsigned int ifindex = if_nametoindex(ifname);
  if (ifindex == 0) return fail(ifname);

  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail("socket");
  struct ip_mreqn mreqn = {.imr_ifindex = (int)ifindex};
  if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &mreqn, sizeof mreqn) < 0) return fail("IP_MULTICAST_IF");
  int ttl = 1, loop = 0, sndbuf = 4 << 20;
  if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl) < 0) return fail("IP_MULTICAST_TTL");
  if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop) < 0) return fail("IP_MULTICAST_LOOP");
  (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  struct sockaddr_in destination = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr = group_address};
  if (connect(fd, (struct sockaddr *)&destination, sizeof destination) < 0) return fail("connect");

  static unsigned char payloads[MAX_BATCH][1472];
  struct iovec vectors[MAX_BATCH];
  struct mmsghdr messages[MAX_BATCH];
  memset(payloads, 0xA5, sizeof payloads);
  memset(messages, 0, sizeof messages);
  for (int i = 0; i < MAX_BATCH; i++) {
    vectors[i].iov_base = payloads[i];
    vectors[i].iov_len = (size_t)size;
    messages[i].msg_hdr.msg_iov = &vectors[i];
    messages[i].msg_hdr.msg_iovlen = 1;
  }

  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  struct sigaction action = {.sa_handler = on_signal};
  sigaction(SIGINT, &action, NULL);
  sigaction(SIGTERM, &action, NULL);

  const uint64_t total = (uint64_t)(rate * seconds + 0.5);
  const double interval = 1e9 / rate;
  /* Datagrams per wake-up: as many as fall due in 50 us, 1 to BATCH. */
  uint64_t per_wake = (uint64_t)(50000.0 / interval);
  if (per_wake < 1) per_wake = 1;
  if (per_wake > (uint64_t)batch) per_wake = (uint64_t)batch;
  uint64_t sent = 0, calls = 0, errors_nobufs = 0, errors_again = 0, largest_batch = 0;
  int64_t max_lag = 0;
  const int64_t t0 = now_ns() + 1000000;  /* start 1 ms from now, on the grid */
  sleep_until(t0);
  while (sent < total && !stop_requested) {
    int64_t now = now_ns();
    /* Datagrams due by now: those with t0 + k * interval <= now. */
    uint64_t due = (uint64_t)((double)(now - t0) / interval) + 1;
    if (due > total) due = total;
    if (due <= sent) {
      /* Until datagram sent + per_wake - 1 is due (or the last one). */
      uint64_t last = sent + per_wake - 1;
      if (last >= total) last = total - 1;
      sleep_until(t0 + (int64_t)((double)last * interval));
      continue;
    }
    int64_t lag = now - (t0 + (int64_t)((double)sent * interval));
    if (lag > max_lag) max_lag = lag;
    uint64_t want = due - sent;
    int count = want > (uint64_t)batch ? batch : (int)want;
    for (int i = 0; i < count; i++) put_u64_be(payloads[i], start + sent + (uint64_t)i);
    int done = sendmmsg(fd, messages, (unsigned int)count, 0);
    calls++;
    if (done < 0) {
      if (errno == ENOBUFS) { errors_nobufs++; continue; }
      if (errno == EAGAIN) { errors_again++; continue; }
      if (errno == EINTR) continue;
      return fail("sendmmsg");
    }
    if ((uint64_t)done > largest_batch) largest_batch = (uint64_t)done;
    sent += (uint64_t)done;
  }
  const int64_t elapsed = now_ns() - t0;
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  const double cpu = usage.ru_utime.tv_sec + usage.ru_stime.tv_sec +
                     (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  printf("{\"sent\": %llu, \"requested\": %llu, \"first_sequence\": %llu, \"seconds\": %.6f, "
         "\"rate\": %.1f, \"max_lag_us\": %.1f, \"sendmmsg_calls\": %llu, \"largest_batch\": %llu, "
         "\"enobufs\": %llu, \"eagain\": %llu, \"scheduled_seconds\": %.6f, \"cpu_seconds\": %.3f, \"interrupted\": %s}\n",
         (unsigned long long)sent, (unsigned long long)total, (unsigned long long)start, elapsed / 1e9,
         elapsed > 0 ? sent / (elapsed / 1e9) : 0.0, max_lag / 1e3, (unsigned long long)calls,
         (unsigned long long)largest_batch, (unsigned long long)errors_nobufs, (unsigned long long)errors_again,
         total > 0 ? (double)(total - 1) * interval / 1e9 : 0.0, cpu, stop_requested ? "true" : "false");
  fflush(stdout);
  close(fd);
  return sent == total ? 0 : 1;
}
