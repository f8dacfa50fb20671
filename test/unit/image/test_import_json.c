/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests of the strict JSON reader used for image manifests, and of the
 * digest helpers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tier/image/import_private.h"

static char err[256];

static struct nl_json *parse_ok(const char *s)
{
	struct nl_json *j = NULL;

	err[0] = '\0';
	if (nl_json_parse(s, strlen(s), &j, err, sizeof(err)) != 0)
		fail_msg("parse failed: %s", err);
	return j;
}

static void parse_bad(const char *s, const char *msg)
{
	struct nl_json *j = NULL;

	err[0] = '\0';
	assert_int_equal(nl_json_parse(s, strlen(s), &j, err, sizeof(err)), -22);
	assert_null(j);
	if (!strstr(err, msg))
		fail_msg("for %s: expected '%s' in '%s'", s, msg, err);
}

static void test_manifest(void **state)
{
	const char *m =
		"{\n \"schemaVersion\": 2,\n"
		" \"mediaType\": \"application/vnd.oci.image.manifest.v1+json\",\n"
		" \"config\": {\"mediaType\": \"application/vnd.oci.image.config.v1+json\","
		" \"digest\": \"sha256:aa\", \"size\": 1234},\n"
		" \"layers\": [ {\"size\": 9007199254740993, \"digest\": \"sha256:bb\"},"
		" {\"size\": 0, \"annotations\": {}} ],\n"
		" \"annotations\": {\"k\": \"v\", \"k\": \"w\"}, \"f\": -1.5e2, \"t\": true,"
		" \"n\": null, \"e\": []}";
	struct nl_json *j = parse_ok(m);
	const struct nl_json *layers, *sz;

	(void)state;
	assert_int_equal(j->type, NL_JSON_OBJECT);
	assert_string_equal(nl_json_get_str(j, "mediaType"),
			    "application/vnd.oci.image.manifest.v1+json");
	layers = nl_json_get(j, "layers");
	assert_int_equal(layers->type, NL_JSON_ARRAY);
	assert_int_equal(layers->count, 2);
	sz = nl_json_get(layers->items[0], "size");
	assert_true(sz->is_int);
	assert_int_equal(sz->integer, 9007199254740993LL);	/* beyond double precision */
	assert_string_equal(nl_json_get_str(nl_json_get(j, "annotations"), "k"), "w");
	assert_false(nl_json_get(j, "f")->is_int);
	assert_true(nl_json_get(j, "f")->number == -150.0);
	assert_true(nl_json_get(j, "t")->boolean);
	assert_int_equal(nl_json_get(j, "n")->type, NL_JSON_NULL);
	assert_int_equal(nl_json_get(j, "e")->count, 0);
	assert_null(nl_json_get(j, "missing"));
	assert_null(nl_json_get_str(j, "schemaVersion"));	/* not a string */
	nl_json_free(j);
}

static void test_strings(void **state)
{
	struct nl_json *j = parse_ok("[\"a\\\"b\\\\c\\/d\\n\\t\", \"\\u00e9\\u20ac\\ud83d\\ude00\","
				     " \"caf\xc3\xa9\", \"x\\u0000y\"]");

	(void)state;
	assert_string_equal(j->items[0]->str, "a\"b\\c/d\n\t");
	assert_string_equal(j->items[1]->str, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
	assert_string_equal(j->items[2]->str, "caf\xc3\xa9");
	assert_int_equal(j->items[3]->str_len, 3);
	nl_json_free(j);
}

static void test_malformed(void **state)
{
	char deep[200];

	(void)state;
	parse_bad("", "unexpected end");
	parse_bad("{\"a\":1,}", "object key");
	parse_bad("[1,2,]", "unexpected character ']'");
	parse_bad("{\"a\" 1}", "':' expected");
	parse_bad("{\"a\":1 \"b\":2}", "',' or '}' expected");
	parse_bad("[1] x", "trailing data");
	parse_bad("\"abc", "unterminated string");
	parse_bad("\"a\tb\"", "control character");
	parse_bad("\"\\x\"", "bad escape");
	parse_bad("\"\\u12G4\"", "bad hex digit");
	parse_bad("\"\\ud800\"", "without its low half");
	parse_bad("\"\\udc00\"", "lone low surrogate");
	parse_bad("\"\xc0\xaf\"", "invalid UTF-8");
	parse_bad("\"\xff\"", "invalid UTF-8");
	parse_bad("012", "leading zero");
	parse_bad("1.", "digit expected after '.'");
	parse_bad("1e+", "digit expected in exponent");
	parse_bad("-", "bad number");
	parse_bad("tru", "unexpected character 't'");
	parse_bad("// comment\n{}", "unexpected character '/'");
	parse_bad("{'a':1}", "object key");
	memset(deep, '[', sizeof(deep) - 1);
	deep[sizeof(deep) - 1] = '\0';
	parse_bad(deep, "nesting deeper than 64");
	/* the offset names where the problem is */
	parse_bad("{\"a\": [1, 2, x]}", "at byte 13");
}

static void test_digests(void **state)
{
	char chain[72];

	(void)state;
	assert_true(nl_digest_valid(
		"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
	assert_false(nl_digest_valid(
		"sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"));
	assert_false(nl_digest_valid("sha256:../../etc/passwd"));
	assert_false(nl_digest_valid(
		"sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
	assert_false(nl_digest_valid(
		"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85"));
	/* sha256("sha256:aaa...a sha256:bbb...b"), computed with sha256sum */
	assert_int_equal(nl_chain_id(
		"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		"sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", chain), 0);
	assert_string_equal(chain,
		"sha256:ccd722928bd92476ba1745586fed6e45a102504185ad88cd89e01ff116fd146c");
	/* the bottom layer's chainID is its diffID */
	assert_int_equal(nl_chain_id(NULL,
		"sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", chain), 0);
	assert_string_equal(chain,
		"sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_manifest),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_digests),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
