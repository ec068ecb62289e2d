#include "ccurl.h"
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>

// The libcurl functions used, resolved by name from the library opened at run time.
static struct {
  CURLcode (*global_init)(long);
  CURL *(*easy_init)(void);
  void (*easy_cleanup)(CURL *);
  void (*easy_reset)(CURL *);
  CURLcode (*easy_perform)(CURL *);
  const char *(*easy_strerror)(CURLcode);
  CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
  CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
  struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
  void (*slist_free_all)(struct curl_slist *);
  CURLM *(*multi_init)(void);
  CURLMcode (*multi_cleanup)(CURLM *);
  CURLMcode (*multi_add_handle)(CURLM *, CURL *);
  CURLMcode (*multi_remove_handle)(CURLM *, CURL *);
  CURLMcode (*multi_perform)(CURLM *, int *);
  CURLMcode (*multi_wait)(CURLM *, struct curl_waitfd[], unsigned int, int, int *);
  CURLMsg *(*multi_info_read)(CURLM *, int *);
  const char *(*multi_strerror)(CURLMcode);
  // Optional: libcurl 7.66 and later. Before it, multi_wait stands in (see ccurl_multi_poll).
  CURLMcode (*multi_poll)(CURLM *, struct curl_waitfd[], unsigned int, int, int *);
} api;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int load_result = -1;
static char load_error[512] = "libcurl not loaded";

#define RESOLVE(field, name)                                                   \
  do {                                                                         \
    *(void **)(&api.field) = dlsym(library, name);                             \
    if (!api.field) {                                                          \
      snprintf(load_error, sizeof load_error, "libcurl.so.4 lacks %s", name);  \
      return;                                                                  \
    }                                                                          \
  } while (0)

static void load(void) {
  void *library = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
  if (!library) {
    snprintf(load_error, sizeof load_error, "%s (install libcurl4)", dlerror());
    return;
  }
  RESOLVE(global_init, "curl_global_init");
  RESOLVE(easy_init, "curl_easy_init");
  RESOLVE(easy_cleanup, "curl_easy_cleanup");
  RESOLVE(easy_reset, "curl_easy_reset");
  RESOLVE(easy_perform, "curl_easy_perform");
  RESOLVE(easy_strerror, "curl_easy_strerror");
  RESOLVE(easy_setopt, "curl_easy_setopt");
  RESOLVE(easy_getinfo, "curl_easy_getinfo");
  RESOLVE(slist_append, "curl_slist_append");
  RESOLVE(slist_free_all, "curl_slist_free_all");
  RESOLVE(multi_init, "curl_multi_init");
  RESOLVE(multi_cleanup, "curl_multi_cleanup");
  RESOLVE(multi_add_handle, "curl_multi_add_handle");
  RESOLVE(multi_remove_handle, "curl_multi_remove_handle");
  RESOLVE(multi_perform, "curl_multi_perform");
  RESOLVE(multi_wait, "curl_multi_wait");
  RESOLVE(multi_info_read, "curl_multi_info_read");
  RESOLVE(multi_strerror, "curl_multi_strerror");
  *(void **)(&api.multi_poll) = dlsym(library, "curl_multi_poll");
  CURLcode code = api.global_init(CURL_GLOBAL_DEFAULT);
  if (code != CURLE_OK) {
    snprintf(load_error, sizeof load_error, "curl_global_init: %s", api.easy_strerror(code));
    return;
  }
  load_result = 0;
  load_error[0] = 0;
}

// pthread_once: the first caller loads, any other waits for it; curl_global_init runs
// exactly once even if two threads want libcurl at the same moment.
int ccurl_load(void) {
  pthread_once(&once, load);
  return load_result;
}

const char *ccurl_load_error(void) { return load_error; }

CURL *ccurl_easy_init(void) { return api.easy_init(); }
void ccurl_easy_cleanup(CURL *h) { api.easy_cleanup(h); }
void ccurl_easy_reset(CURL *h) { api.easy_reset(h); }
CURLcode ccurl_easy_perform(CURL *h) { return api.easy_perform(h); }
const char *ccurl_easy_strerror(CURLcode code) { return api.easy_strerror(code); }
struct curl_slist *ccurl_slist_append(struct curl_slist *list, const char *text) { return api.slist_append(list, text); }
void ccurl_slist_free_all(struct curl_slist *list) { api.slist_free_all(list); }

CURLM *ccurl_multi_init(void) { return api.multi_init(); }
void ccurl_multi_cleanup(CURLM *m) { api.multi_cleanup(m); }
CURLMcode ccurl_multi_add_handle(CURLM *m, CURL *h) { return api.multi_add_handle(m, h); }
CURLMcode ccurl_multi_remove_handle(CURLM *m, CURL *h) { return api.multi_remove_handle(m, h); }
CURLMcode ccurl_multi_perform(CURLM *m, int *running) { return api.multi_perform(m, running); }
const char *ccurl_multi_strerror(CURLMcode code) { return api.multi_strerror(code); }

CURLMcode ccurl_multi_poll(CURLM *m, int timeout_ms) {
  if (api.multi_poll) return api.multi_poll(m, NULL, 0, timeout_ms, NULL);
  // curl_multi_wait returns at once when libcurl has no socket to wait on (while it
  // resolves a name, say): sleep a little then, so the caller's loop does not spin.
  int ready = 0;
  CURLMcode code = api.multi_wait(m, NULL, 0, timeout_ms, &ready);
  if (code == CURLM_OK && ready == 0) {
    struct timespec pause = {0, 10 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
  return code;
}

int ccurl_multi_done(CURLM *m, CURL *h, CURLcode *result) {
  int left = 0;
  CURLMsg *message;
  while ((message = api.multi_info_read(m, &left))) {
    if (message->msg == CURLMSG_DONE && message->easy_handle == h) {
      *result = message->data.result;
      return 1;
    }
  }
  return 0;
}

CURLcode ccurl_setopt_long(CURL *h, CURLoption o, long v) { return api.easy_setopt(h, o, v); }
CURLcode ccurl_setopt_ptr(CURL *h, CURLoption o, const void *v) { return api.easy_setopt(h, o, v); }
CURLcode ccurl_setopt_off(CURL *h, CURLoption o, curl_off_t v) { return api.easy_setopt(h, o, v); }
CURLcode ccurl_setopt_slist(CURL *h, CURLoption o, struct curl_slist *v) { return api.easy_setopt(h, o, v); }
CURLcode ccurl_setopt_iofn(CURL *h, CURLoption o, ccurl_io_fn v) { return api.easy_setopt(h, o, v); }
CURLcode ccurl_setopt_seekfn(CURL *h, CURLoption o, ccurl_seek_fn v) { return api.easy_setopt(h, o, v); }
CURLcode ccurl_getinfo_long(CURL *h, CURLINFO i, long *v) { return api.easy_getinfo(h, i, v); }
CURLcode ccurl_getinfo_double(CURL *h, CURLINFO i, double *v) { return api.easy_getinfo(h, i, v); }
