/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A small strict JSON reader for image manifests, indexes and configs.
 * Input is untrusted: depth is bounded, every error names its byte offset,
 * strings must be valid UTF-8 and escapes well formed.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tier/import_private.h"

struct parser {
	const char *s;
	size_t len, pos;
	char *err;
	size_t errlen;
};

__attribute__((format(printf, 2, 3)))
static int fail(struct parser *p, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(p->err, p->errlen, "JSON error at byte %zu: ", p->pos);
	if (n >= 0 && (size_t)n < p->errlen) {
		va_start(ap, fmt);
		vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static void skip_ws(struct parser *p)
{
	while (p->pos < p->len && strchr(" \t\r\n", p->s[p->pos]) && p->s[p->pos])
		p->pos++;
}

static int peek(struct parser *p)
{
	return p->pos < p->len ? (unsigned char)p->s[p->pos] : -1;
}

void nl_json_free(struct nl_json *j)
{
	if (!j)
		return;
	for (size_t i = 0; i < j->count; i++) {
		if (j->keys)
			free(j->keys[i]);
		nl_json_free(j->items[i]);
	}
	free(j->keys);
	free(j->items);
	free(j->str);
	free(j);
}

static int parse_value(struct parser *p, struct nl_json **out, int depth);

static int expect_word(struct parser *p, const char *w)
{
	size_t n = strlen(w);

	if (p->len - p->pos < n || memcmp(p->s + p->pos, w, n) != 0)
		return fail(p, "unexpected character '%c'", p->s[p->pos]);
	p->pos += n;
	return 0;
}

static int hex4(struct parser *p, unsigned *out)
{
	unsigned v = 0;

	if (p->len - p->pos < 4)
		return fail(p, "truncated \\u escape");
	for (int i = 0; i < 4; i++) {
		char c = p->s[p->pos++];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return fail(p, "bad hex digit in \\u escape");
	}
	*out = v;
	return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

static int unicode_escape(struct parser *p, char *o, size_t *n)
{
	unsigned cp, lo;
	int r = hex4(p, &cp);

	if (r)
		return r;
	if (cp >= 0xdc00 && cp <= 0xdfff)
		return fail(p, "lone low surrogate in \\u escape");
	if (cp >= 0xd800 && cp <= 0xdbff) {
		if (p->len - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
			return fail(p, "high surrogate without its low half");
		p->pos += 2;
		r = hex4(p, &lo);
		if (r)
			return r;
		if (lo < 0xdc00 || lo > 0xdfff)
			return fail(p, "bad low surrogate in \\u escape");
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
	}
	*n += put_utf8(o + *n, cp);
	return 0;
}

/* Length of the valid UTF-8 sequence at @s (max @left bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t left)
{
	size_t n;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		n = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n > left)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* overlong forms, surrogates and out-of-range code points */
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

static int escape(struct parser *p, char *o, size_t *n)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char *k;

	if (p->pos >= p->len)
		return fail(p, "unterminated string");
	k = strchr(from, p->s[p->pos]);
	if (p->s[p->pos] == 'u') {
		p->pos++;
		return unicode_escape(p, o, n);
	}
	if (!k || !*k)
		return fail(p, "bad escape '\\%c'", p->s[p->pos]);
	o[(*n)++] = to[k - from];
	p->pos++;
	return 0;
}

static int parse_string(struct parser *p, char **out, size_t *out_len)
{
	/* decoded text is never longer than the source */
	size_t start = ++p->pos, n = 0;
	char *o = malloc(p->len - start + 1);
	int r = 0;

	if (!o)
		return -ENOMEM;
	while (!r) {
		if (p->pos >= p->len) {
			r = fail(p, "unterminated string");
			break;
		}
		unsigned char c = (unsigned char)p->s[p->pos];

		if (c == '"') {
			p->pos++;
			break;
		}
		if (c < 0x20) {
			r = fail(p, "control character in string");
		} else if (c == '\\') {
			p->pos++;
			r = escape(p, o, &n);
		} else {
			size_t k = utf8_len((const unsigned char *)p->s + p->pos, p->len - p->pos);

			if (!k)
				r = fail(p, "invalid UTF-8 in string");
			memcpy(o + n, p->s + p->pos, k);
			n += k;
			p->pos += k;
		}
	}
	if (r) {
		free(o);
		return r;
	}
	o[n] = '\0';
	*out = o;
	*out_len = n;
	return 0;
}

static size_t digits(struct parser *p)
{
	size_t n = 0;

	while (peek(p) >= '0' && peek(p) <= '9') {
		p->pos++;
		n++;
	}
	return n;
}

static int parse_number(struct parser *p, struct nl_json *j)
{
	size_t start = p->pos;
	bool frac = false;
	char buf[64], *end;

	if (peek(p) == '-')
		p->pos++;
	if (peek(p) == '0') {
		p->pos++;
		if (peek(p) >= '0' && peek(p) <= '9')
			return fail(p, "leading zero in number");
	} else if (!digits(p)) {
		return fail(p, "bad number");
	}
	if (peek(p) == '.') {
		p->pos++;
		frac = true;
		if (!digits(p))
			return fail(p, "digit expected after '.'");
	}
	if (peek(p) == 'e' || peek(p) == 'E') {
		p->pos++;
		frac = true;
		if (peek(p) == '+' || peek(p) == '-')
			p->pos++;
		if (!digits(p))
			return fail(p, "digit expected in exponent");
	}
	if (p->pos - start >= sizeof(buf))
		return fail(p, "number too long");
	memcpy(buf, p->s + start, p->pos - start);
	buf[p->pos - start] = '\0';
	j->type = NL_JSON_NUMBER;
	j->number = strtod(buf, NULL);
	if (!frac) {
		errno = 0;
		j->integer = strtoll(buf, &end, 10);
		j->is_int = errno == 0;
	}
	return 0;
}

static int append(struct nl_json *j, char *key, struct nl_json *item)
{
	size_t n = j->count + 1;
	struct nl_json **items = realloc(j->items, n * sizeof(*items));

	if (!items)
		return -ENOMEM;
	j->items = items;
	if (j->type == NL_JSON_OBJECT) {
		char **keys = realloc(j->keys, n * sizeof(*keys));

		if (!keys)
			return -ENOMEM;
		j->keys = keys;
		keys[j->count] = key;
	}
	items[j->count] = item;
	j->count = n;
	return 0;
}

static int parse_member(struct parser *p, struct nl_json *j, int depth)
{
	char *key = NULL;
	size_t klen;
	struct nl_json *v = NULL;
	int r;

	skip_ws(p);
	if (peek(p) != '"')
		return fail(p, "object key (a string) expected");
	r = parse_string(p, &key, &klen);
	if (r)
		return r;
	skip_ws(p);
	if (peek(p) != ':') {
		free(key);
		return fail(p, "':' expected after object key");
	}
	p->pos++;
	r = parse_value(p, &v, depth + 1);
	if (!r)
		r = append(j, key, v);
	if (r) {
		free(key);
		nl_json_free(v);
	}
	return r;
}

static int parse_element(struct parser *p, struct nl_json *j, int depth)
{
	struct nl_json *v = NULL;
	int r = parse_value(p, &v, depth + 1);

	if (!r)
		r = append(j, NULL, v);
	if (r)
		nl_json_free(v);
	return r;
}

/* Arrays and objects: '[' / '{' already seen. */
static int parse_container(struct parser *p, struct nl_json *j, int depth)
{
	char close = j->type == NL_JSON_ARRAY ? ']' : '}';
	int r;

	if (depth >= NL_JSON_MAX_DEPTH)
		return fail(p, "nesting deeper than %d", NL_JSON_MAX_DEPTH);
	p->pos++;
	skip_ws(p);
	if (peek(p) == close) {
		p->pos++;
		return 0;
	}
	for (;;) {
		r = j->type == NL_JSON_ARRAY ? parse_element(p, j, depth)
					     : parse_member(p, j, depth);
		if (r)
			return r;
		skip_ws(p);
		if (peek(p) == close) {
			p->pos++;
			return 0;
		}
		if (peek(p) != ',')
			return fail(p, "',' or '%c' expected", close);
		p->pos++;
	}
}

static int parse_value(struct parser *p, struct nl_json **out, int depth)
{
	struct nl_json *j = calloc(1, sizeof(*j));
	int r, c;

	if (!j)
		return -ENOMEM;
	skip_ws(p);
	c = peek(p);
	if (c == '{' || c == '[') {
		j->type = c == '{' ? NL_JSON_OBJECT : NL_JSON_ARRAY;
		r = parse_container(p, j, depth);
	} else if (c == '"') {
		j->type = NL_JSON_STRING;
		r = parse_string(p, &j->str, &j->str_len);
	} else if (c == 't' || c == 'f') {
		j->type = NL_JSON_BOOL;
		j->boolean = c == 't';
		r = expect_word(p, c == 't' ? "true" : "false");
	} else if (c == 'n') {
		r = expect_word(p, "null");
	} else if (c == '-' || (c >= '0' && c <= '9')) {
		r = parse_number(p, j);
	} else {
		r = c < 0 ? fail(p, "unexpected end of input") : fail(p, "unexpected character '%c'", c);
	}
	if (r) {
		nl_json_free(j);
		return r;
	}
	*out = j;
	return 0;
}

int nl_json_parse(const char *text, size_t len, struct nl_json **out, char *err, size_t errlen)
{
	struct parser p = { .s = text, .len = len, .err = err, .errlen = errlen };
	struct nl_json *j = NULL;
	int r = parse_value(&p, &j, 0);

	if (r)
		return r;
	skip_ws(&p);
	if (p.pos != p.len) {
		nl_json_free(j);
		return fail(&p, "trailing data after the JSON value");
	}
	*out = j;
	return 0;
}

const struct nl_json *nl_json_get(const struct nl_json *obj, const char *key)
{
	if (!obj || obj->type != NL_JSON_OBJECT)
		return NULL;
	for (size_t i = obj->count; i-- > 0;)
		if (strcmp(obj->keys[i], key) == 0)
			return obj->items[i];
	return NULL;
}

const char *nl_json_get_str(const struct nl_json *obj, const char *key)
{
	const struct nl_json *v = nl_json_get(obj, key);

	return v && v->type == NL_JSON_STRING ? v->str : NULL;
}
