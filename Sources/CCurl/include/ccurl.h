// CCurl: libcurl for Swift, loaded on first use.
//
// curl_easy_setopt is variadic and a type-checking macro, which Swift cannot call; one
// wrapper per argument kind stands in for it. And libcurl is opened with dlopen(3) only
// when a push is configured: with its TLS, SSH, Kerberos and LDAP libraries it is about
// 6.5 MiB of resident memory that an agent scraped by Prometheus never needs. Only the
// types and constants of <curl/curl.h> are used from the header; every call goes through
// the ccurl_ functions below (calling a curl_ function directly would fail to link).
#ifndef CCURL_H
#define CCURL_H

#include <curl/curl.h>

/// Opens libcurl.so.4 and runs curl_global_init, once; later calls return the first
/// result. 0 on success; otherwise ccurl_load_error() says why (dlerror's text).
int ccurl_load(void);
const char *ccurl_load_error(void);

CURL *ccurl_easy_init(void);
void ccurl_easy_cleanup(CURL *h);
void ccurl_easy_reset(CURL *h);
CURLcode ccurl_easy_perform(CURL *h);
const char *ccurl_easy_strerror(CURLcode code);
struct curl_slist *ccurl_slist_append(struct curl_slist *list, const char *text);
void ccurl_slist_free_all(struct curl_slist *list);

// The multi interface, for one transfer at a time that the caller can abandon between two
// calls: curl_easy_perform cannot be interrupted from another thread.
CURLM *ccurl_multi_init(void);
void ccurl_multi_cleanup(CURLM *m);
CURLMcode ccurl_multi_add_handle(CURLM *m, CURL *h);
CURLMcode ccurl_multi_remove_handle(CURLM *m, CURL *h);
CURLMcode ccurl_multi_perform(CURLM *m, int *running);
const char *ccurl_multi_strerror(CURLMcode code);
/// Waits up to timeout_ms for activity on the transfers' sockets (curl_multi_poll, or
/// curl_multi_wait before libcurl 7.66).
CURLMcode ccurl_multi_poll(CURLM *m, int timeout_ms);
/// 1 and the transfer's result when `h` has finished, else 0 (reads curl_multi_info_read).
int ccurl_multi_done(CURLM *m, CURL *h, CURLcode *result);

CURLcode ccurl_setopt_long(CURL *h, CURLoption o, long v);
CURLcode ccurl_setopt_ptr(CURL *h, CURLoption o, const void *v);
CURLcode ccurl_setopt_off(CURL *h, CURLoption o, curl_off_t v);
CURLcode ccurl_setopt_slist(CURL *h, CURLoption o, struct curl_slist *v);
typedef size_t (*ccurl_io_fn)(char *, size_t, size_t, void *);
CURLcode ccurl_setopt_iofn(CURL *h, CURLoption o, ccurl_io_fn v);
typedef int (*ccurl_seek_fn)(void *, curl_off_t, int);
CURLcode ccurl_setopt_seekfn(CURL *h, CURLoption o, ccurl_seek_fn v);
CURLcode ccurl_getinfo_long(CURL *h, CURLINFO i, long *v);
CURLcode ccurl_getinfo_double(CURL *h, CURLINFO i, double *v);

#endif
