/*
 * test_util.c - the parsing helpers.
 */
#include <string.h>

#include "harness.h"
#include "headers.h"
#include "util.h"

static void
test_query_decode(void)
{
	char out[16];

	CHECK_EQ_INT(query_decode("a%20b+c", 7, out, sizeof(out)), 5);
	CHECK(strcmp(out, "a b c") == 0);
	CHECK_EQ_INT(query_decode("%41%4a", 6, out, sizeof(out)), 2);
	CHECK(strcmp(out, "AJ") == 0);
	CHECK_EQ_INT(query_decode("%4", 2, out, sizeof(out)), -1);
	CHECK_EQ_INT(query_decode("%zz", 3, out, sizeof(out)), -1);
	CHECK_EQ_INT(query_decode("abc%", 4, out, sizeof(out)), -1);
	CHECK_EQ_INT(query_decode("0123456789abcdef", 16, out, sizeof(out)),
	    -1);
}

static void
test_query_find(void)
{
	size_t len;
	const char *v;

	v = query_find("a=1&request_id=42&b=2", "request_id", &len);
	CHECK(v != NULL && len == 2 && strncmp(v, "42", 2) == 0);
	v = query_find("request_id=", "request_id", &len);
	CHECK(v != NULL && len == 0);
	CHECK(query_find("xrequest_id=1", "request_id", &len) == NULL);
	CHECK(query_find("request_id", "request_id", &len) == NULL);
	CHECK(query_find(NULL, "id", &len) == NULL);
	v = query_find("id=7", "id", &len);
	CHECK(v != NULL && len == 1 && *v == '7');
}

static void
test_query_param(void)
{
	char out[16];

	CHECK_EQ_INT(query_param("a=1&id=x%20y", "id", out, sizeof(out), 8),
	    3);
	CHECK(strcmp(out, "x y") == 0);
	CHECK_EQ_INT(query_param("a=1", "id", out, sizeof(out), 8), -1);
	CHECK_EQ_INT(query_param(NULL, "id", out, sizeof(out), 8), -1);
	CHECK_EQ_INT(query_param("id=%zz", "id", out, sizeof(out), 8), -2);
	/* 3 * max encoded bytes at most, whatever they decode to */
	CHECK_EQ_INT(query_param("id=%41%41%41", "id", out, sizeof(out), 3),
	    3);
	CHECK_EQ_INT(query_param("id=%41%41%41a", "id", out, sizeof(out), 3),
	    -2);
	CHECK_EQ_INT(query_param("id=", "id", out, sizeof(out), 8), 0);
}

static void
test_hostport(void)
{
	char host[64], err[128];
	uint16_t port;

	CHECK_EQ_INT(parse_hostport("127.0.0.1:5001", host, sizeof(host),
	    &port, err, sizeof(err)), 0);
	CHECK(strcmp(host, "127.0.0.1") == 0 && port == 5001);
	CHECK_EQ_INT(parse_hostport("[::1]:80", host, sizeof(host), &port,
	    err, sizeof(err)), 0);
	CHECK(strcmp(host, "::1") == 0 && port == 80);
	CHECK_EQ_INT(parse_hostport(":9", host, sizeof(host), &port, err,
	    sizeof(err)), 0);
	CHECK(host[0] == '\0' && port == 9);
	CHECK_EQ_INT(parse_hostport("host", host, sizeof(host), &port, err,
	    sizeof(err)), -1);
	CHECK_EQ_INT(parse_hostport("host:0", host, sizeof(host), &port, err,
	    sizeof(err)), -1);
	CHECK_EQ_INT(parse_hostport("host:70000", host, sizeof(host), &port,
	    err, sizeof(err)), -1);
	CHECK(strstr(err, "1 to 65535") != NULL);
}

static void
test_names(void)
{
	CHECK(name_is_valid("server-1"));
	CHECK(name_is_valid("a"));
	CHECK(name_is_valid("Web_2.x"));
	CHECK(!name_is_valid(""));
	CHECK(!name_is_valid("-a"));
	CHECK(name_is_valid("Server 4"));
	CHECK(!name_is_valid(" a"));
	CHECK(!name_is_valid("Server 4 "));
	CHECK(name_is_valid("Server  4"));
	CHECK(!name_is_valid("a\tb"));
	CHECK(!name_is_valid("a/b"));
	CHECK(!name_is_valid(
	    "0123456789012345678901234567890123456789012345678901234567890123"));
}

static void
test_sizes(void)
{
	uint64_t v;
	long l;

	CHECK(parse_size("8m", &v) == 0 && v == 8u << 20);
	CHECK(parse_size("512k", &v) == 0 && v == 512u << 10);
	CHECK(parse_size("100", &v) == 0 && v == 100);
	CHECK(parse_size("8mb", &v) == -1);
	CHECK(parse_size("-1", &v) == -1);
	CHECK(parse_long("12", 1, 20, &l) == 0 && l == 12);
	CHECK(parse_long("21", 1, 20, &l) == -1);
	CHECK(parse_long("1x", 1, 20, &l) == -1);
}

static void
test_admin_peers(void)
{
	struct allow_net nets[3], scratch;
	int n = 0;

	CHECK(parse_cidr("10.1.0.0/16", &nets[n].family, nets[n].addr,
	    &nets[n].prefix) == 0);
	n++;
	CHECK(parse_cidr("172.17.0.1", &nets[n].family, nets[n].addr,
	    &nets[n].prefix) == 0 && nets[n].prefix == 32);
	n++;
	CHECK(parse_cidr("fd00::/8", &nets[n].family, nets[n].addr,
	    &nets[n].prefix) == 0);
	n++;
	CHECK(parse_cidr("nonsense", &scratch.family, scratch.addr,
	    &scratch.prefix) == -1);
	CHECK(parse_cidr("10.0.0.0/33", &scratch.family, scratch.addr,
	    &scratch.prefix) == -1);

	/* loopback is always allowed, nothing else without a listed net */
	CHECK(peer_is_allowed("127.0.0.1", NULL, 0));
	CHECK(peer_is_allowed("127.8.9.10", NULL, 0));
	CHECK(peer_is_allowed("::1", NULL, 0));
	CHECK(peer_is_allowed("::ffff:127.0.0.1", NULL, 0));
	CHECK(!peer_is_allowed("10.1.2.3", NULL, 0));
	CHECK(!peer_is_allowed("192.168.1.5", NULL, 0));
	CHECK(!peer_is_allowed("::2", NULL, 0));
	CHECK(!peer_is_allowed("garbage", NULL, 0));

	CHECK(peer_is_allowed("10.1.200.3", nets, n));
	CHECK(!peer_is_allowed("10.2.0.1", nets, n));
	CHECK(peer_is_allowed("172.17.0.1", nets, n));
	CHECK(!peer_is_allowed("172.17.0.2", nets, n));
	CHECK(peer_is_allowed("::ffff:10.1.0.9", nets, n));
	CHECK(peer_is_allowed("fd12::1", nets, n));
	CHECK(!peer_is_allowed("fe80::1", nets, n));
}

#define LIT(s)	s, sizeof(s) - 1

static void
test_answer_checks(void)
{
	const char *r;
	size_t rl;
	int64_t n;
	int code;

	CHECK(header_name_valid(LIT("X-!#$%&'*+.^_`|~09az")));
	CHECK(!header_name_valid(LIT("")));
	CHECK(!header_name_valid(LIT("Bad Name")));
	CHECK(!header_name_valid(LIT("X-A ")));
	CHECK(!header_name_valid(LIT("(x)")));
	CHECK(!header_name_valid(LIT("X-\x01")));
	CHECK(!header_name_valid(LIT("X-\xe9")));
	CHECK(header_value_valid(LIT("caf\xe9\tau lait")));
	CHECK(header_value_valid(LIT("")));
	CHECK(!header_value_valid(LIT("a\rb")));
	CHECK(!header_value_valid(LIT("a\nb")));
	CHECK(!header_value_valid("a\0b", 3));
	CHECK(!header_value_valid(LIT("a\x7f")));
	CHECK(!header_value_valid(LIT("\x1b[31m")));

	CHECK(header_content_length(LIT("0002"), &n) == 0 && n == 2);
	CHECK(header_content_length(LIT("9223372036854775807"), &n) == 0 &&
	    n == INT64_MAX);
	CHECK(header_content_length(LIT("9223372036854775808"), &n) == -1);
	CHECK(header_content_length(LIT(""), &n) == -1);
	CHECK(header_content_length(LIT("+2"), &n) == -1);
	CHECK(header_content_length(LIT("-2"), &n) == -1);
	CHECK(header_content_length(LIT("2 2"), &n) == -1);
	CHECK(header_content_length(LIT("2, 2"), &n) == -1);
	CHECK(header_content_length(LIT("0x2"), &n) == -1);

	CHECK(header_status_line(LIT("HTTP/1.1 200 OK"), &code, &r, &rl) == 0 &&
	    code == 200 && rl == 2 && memcmp(r, "OK", 2) == 0);
	CHECK(header_status_line(LIT("HTTP/1.0 404"), &code, &r, &rl) == 0 &&
	    code == 404 && rl == 0);
	CHECK(header_status_line(LIT("HTTP/1.1 200 "), &code, &r, &rl) == 0 &&
	    rl == 0);
	CHECK(header_status_line(LIT("HTTP/1.1 200 OK\rX: y"), &code, &r,
	    &rl) == -2);
	CHECK(header_status_line(LIT("HTTP/1.1 200\tOK"), &code, &r, &rl) ==
	    -1);
	CHECK(header_status_line(LIT("HTTP/1.1  200 OK"), &code, &r, &rl) ==
	    -1);
	CHECK(header_status_line(LIT("HTTP/1.1 2000"), &code, &r, &rl) == -1);
	CHECK(header_status_line(LIT("HTTP/1.2 200 OK"), &code, &r, &rl) ==
	    -1);
	CHECK(header_status_line(LIT("HTTP/2 200"), &code, &r, &rl) == -1);
	CHECK(header_status_line(LIT(" HTTP/1.1 200 OK"), &code, &r, &rl) ==
	    -1);
	CHECK(header_status_line(LIT("HTTP 200 OK"), &code, &r, &rl) == -1);
	CHECK(header_status_line(LIT("HTTP/1.1 2x0 OK"), &code, &r, &rl) ==
	    -1);
}

static void
test_host_names(void)
{
	CHECK(host_name_is_valid("localhost", 9));
	CHECK(host_name_is_valid("lb.example", 10));
	CHECK(host_name_is_valid("127.0.0.1", 9));
	CHECK(host_name_is_valid("::1", 3));
	CHECK(host_name_is_valid("fd00::5", 7));
	CHECK(host_name_is_valid("localhost:5000", 9));	/* the host part */
	CHECK(!host_name_is_valid("localhost:5000", 14));
	CHECK(!host_name_is_valid("", 0));
	CHECK(!host_name_is_valid("a/b", 3));
	CHECK(!host_name_is_valid("a b", 3));
	CHECK(!host_name_is_valid("[::1]", 5));
	CHECK(!host_name_is_valid(":::", 3));
	CHECK(!host_name_is_valid("evil\x00.example", 13));
}

static const struct test_case tests[] = {
	{ "a replica's status line and header fields", test_answer_checks },
	{ "Host names and addresses", test_host_names },
	{ "admin access: loopback and listed networks", test_admin_peers },
	{ "query values are percent-decoded", test_query_decode },
	{ "query parameters are found by exact name", test_query_find },
	{ "query parameters are decoded, bounded, or refused", test_query_param },
	{ "HOST:PORT parsing", test_hostport },
	{ "replica name rules", test_names },
	{ "numbers and sizes", test_sizes },
};

int
main(void)
{
	return harness_run("util", tests, sizeof(tests) / sizeof(tests[0]));
}
