/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests of image source names as skopeo and podman write them:
 * TRANSPORT:PATH:REFERENCE split at the first colons, references with
 * colons of their own, docker-archive source indexes, transports that are
 * not read here, and docker reference normalisation.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tier/image/import_private.h"

static char err[1024];

static struct nl_source parse_ok(const char *source)
{
	struct nl_source s;

	err[0] = '\0';
	if (nl_source_parse(source, &s, err, sizeof(err)) != 0)
		fail_msg("%s: %s", source, err);
	return s;
}

static void expect(const char *source, const char *transport, const char *path,
		   const char *ref, long index)
{
	struct nl_source s = parse_ok(source);

	assert_string_equal(s.transport, transport);
	assert_string_equal(s.path, path);
	assert_string_equal(s.ref, ref);
	assert_int_equal(s.index, index);
}

static void test_reference_after_first_colon(void **state)
{
	(void)state;
	expect("docker-archive:/tmp/nl-no/app.tar:localhost/app:latest", "docker-archive",
	       "/tmp/nl-no/app.tar", "localhost/app:latest", -1);
	expect("oci:/tmp/nl-no/x:name:tag", "oci", "/tmp/nl-no/x", "name:tag", -1);
	expect("oci-archive:/tmp/nl-no/x.tar:registry.example:5000/ns/app:1.2", "oci-archive",
	       "/tmp/nl-no/x.tar", "registry.example:5000/ns/app:1.2", -1);
	expect("oci-archive:/tmp/nl-no/x.tar", "oci-archive", "/tmp/nl-no/x.tar", "", -1);
	expect("oci:/tmp/nl-no/x:", "oci", "/tmp/nl-no/x", "", -1);
}

static void test_source_index(void **state)
{
	struct nl_source s;

	(void)state;
	expect("docker-archive:/tmp/nl-no/a.tar:@1", "docker-archive", "/tmp/nl-no/a.tar", "@1", 1);
	assert_int_equal(nl_source_parse("docker-archive:/tmp/nl-no/a.tar:@x", &s, err,
					 sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "source index"));
}

static void test_without_transport(void **state)
{
	char dir[] = "/tmp/nl-ut-ref-XXXXXX", withcolon[64], src[128];

	(void)state;
	expect("/tmp/nl-no/layout", "", "/tmp/nl-no/layout", "", -1);
	expect("/tmp/nl-no/layout:app:1", "", "/tmp/nl-no/layout", "app:1", -1);
	/* a path that holds a colon is found when it exists */
	assert_non_null(mkdtemp(dir));
	snprintf(withcolon, sizeof(withcolon), "%s/a:b", dir);
	assert_int_equal(mkdir(withcolon, 0755), 0);
	snprintf(src, sizeof(src), "oci:%s:app:1", withcolon);
	expect(src, "oci", withcolon, "app:1", -1);
	expect(withcolon, "", withcolon, "", -1);
	rmdir(withcolon);
	rmdir(dir);
}

static void expect_unread(const char *source, const char *command)
{
	struct nl_source s;

	err[0] = '\0';
	assert_int_equal(nl_source_parse(source, &s, err, sizeof(err)), -EPROTONOSUPPORT);
	if (!strstr(err, command))
		fail_msg("%s: expected '%s' in '%s'", source, command, err);
}

static void test_unread_transports(void **state)
{
	(void)state;
	expect_unread("docker://debian:12", "skopeo copy docker://debian:12 oci:/tmp/debian:12");
	expect_unread("docker://quay.io/ns/app@sha256:0123",
		      "skopeo copy docker://quay.io/ns/app@sha256:0123 oci:/tmp/app:latest");
	expect_unread("containers-storage:localhost/app:latest",
		      "skopeo copy containers-storage:localhost/app:latest oci:/tmp/app:latest");
	expect_unread("dir:/var/tmp/img", "skopeo copy dir:/var/tmp/img oci:/tmp/img:latest");
	expect_unread("docker-daemon:app:2", "skopeo copy docker-daemon:app:2 oci:/tmp/app:2");
	assert_non_null(strstr(err, "not the docker-daemon: transport"));
}

static void test_reference_normalisation(void **state)
{
	(void)state;
	assert_true(nl_ref_equal("app", "docker.io/library/app:latest"));
	assert_true(nl_ref_equal("app:1", "docker.io/library/app:1"));
	assert_true(nl_ref_equal("ns/app", "docker.io/ns/app:latest"));
	assert_true(nl_ref_equal("localhost/app", "localhost/app:latest"));
	assert_true(nl_ref_equal("registry:5000/app", "registry:5000/app:latest"));
	assert_false(nl_ref_equal("app:1", "app:2"));
	assert_false(nl_ref_equal("localhost/app:latest", "docker.io/library/app:latest"));
	assert_false(nl_ref_equal("quay.io/app", "docker.io/quay.io/app"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reference_after_first_colon),
		cmocka_unit_test(test_source_index),
		cmocka_unit_test(test_without_transport),
		cmocka_unit_test(test_unread_transports),
		cmocka_unit_test(test_reference_normalisation),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
