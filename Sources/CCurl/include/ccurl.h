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

CURLcode ccurl_setopt_long(CURL *h, CURLoption o, long v);
CURLcode ccurl_setopt_ptr(CURL *h, CURLoption o, const void *v);
CURLcode ccurl_setopt_off(CURL *h, CURLoption o, curl_off_t v);
CURLcode ccurl_setopt_slist(CURL *h, CURLoption o, struct curl_slist *v);
typedef size_t (*ccurl_io_fn)(char *, size_t, size_t, void *);
CURLcode ccurl_setopt_iofn(CURL *h, CURLoption o, ccurl_io_fn v);
CURLcode ccurl_getinfo_long(CURL *h, CURLINFO i, long *v);
CURLcode ccurl_getinfo_double(CURL *h, CURLINFO i, double *v);

#endif
