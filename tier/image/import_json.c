/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Image manifests, indexes and configs are read with json-c. Input is
 * untrusted, and json-c 0.16 accepts, even with JSON_TOKENER_STRICT, raw
 * control characters, lone surrogates and overlong UTF-8 in strings,
 * single-quoted keys, "1.", NaN and Infinity: one pass over the tokens
 * refuses those (RFC 8259) before json-c's tree is used. Every error names
 * its byte offset.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tier/image/import_private.h"

struct lexer {
	const char *s;
	size_t len, pos;
	char stack[NL_JSON_MAX_DEPTH + 1];	/* '{' or '[' of open containers */
	int depth;
	bool key_expected;
	char msg[160];
};

__attribute__((format(printf, 2, 3)))
static int lex_fail(struct lexer *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->msg, sizeof(p->msg), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int peek(const struct lexer *p)
{
	return p->pos < p->len ? (unsigned char)p->s[p->pos] : -1;
}

static bool is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int hex4(struct lexer *p, unsigned *out)
{
	unsigned v = 0;

	if (p->len - p->pos < 4)
		return lex_fail(p, "truncated \\u escape");
	for (int i = 0; i < 4; i++) {
		char c = p->s[p->pos++];
		const char *hex = "0123456789abcdef", *k = strchr(hex, c | 0x20);

		if (!c || !k || !*k)
			return lex_fail(p, "bad hex digit in \\u escape");
		v = v << 4 | (unsigned)(k - hex);
	}
	*out = v;
	return 0;
}

static int unicode_escape(struct lexer *p)
{
	unsigned cp, lo;
	int r = hex4(p, &cp);

	if (r)
		return r;
	if (cp >= 0xdc00 && cp <= 0xdfff)
		return lex_fail(p, "lone low surrogate in \\u escape");
	if (cp < 0xd800 || cp > 0xdbff)
		return 0;
	if (p->len - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
		return lex_fail(p, "high surrogate without its low half");
	p->pos += 2;
	r = hex4(p, &lo);
	if (!r && (lo < 0xdc00 || lo > 0xdfff))
		r = lex_fail(p, "bad low surrogate in \\u escape");
	return r;
}

/* Length of the valid UTF-8 sequence at @s (max @left bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t left)
{
	size_t n = s[0] < 0x80 ? 1 : (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3
		 : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
	unsigned cp = n == 2 ? s[0] & 0x1fu : n == 3 ? s[0] & 0x0fu : s[0] & 0x07u;

	if (n <= 1 || n > left)
		return n > left ? 0 : n;
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

static int escape(struct lexer *p)
{
	int c = peek(p);

	if (c < 0)
		return lex_fail(p, "unterminated string");
	p->pos++;
	if (c == 'u')
		return unicode_escape(p);
	if (!c || !strchr("\"\\/bfnrt", c)) {
		p->pos--;
		return lex_fail(p, "bad escape '\\%c'", c);
	}
	return 0;
}

static int string_token(struct lexer *p)
{
	int r = 0;

	p->pos++;
	while (!r) {
		int c = peek(p);
		size_t k;

		if (c < 0)
			return lex_fail(p, "unterminated string");
		if (c == '"') {
			p->pos++;
			return 0;
		}
		if (c < 0x20)
			return lex_fail(p, "control character in string");
		if (c == '\\') {
			p->pos++;
			r = escape(p);
			continue;
		}
		k = utf8_len((const unsigned char *)p->s + p->pos, p->len - p->pos);
		if (!k)
			return lex_fail(p, "invalid UTF-8 in string");
		p->pos += k;
	}
	return r;
}

static size_t digits(struct lexer *p)
{
	size_t n = 0;

	for (; is_digit(peek(p)); n++)
		p->pos++;
	return n;
}

static int number_token(struct lexer *p)
{
	if (peek(p) == '-')
		p->pos++;
	if (peek(p) == '0') {
		p->pos++;
		if (is_digit(peek(p)))
			return lex_fail(p, "leading zero in number");
	} else if (!digits(p)) {
		return lex_fail(p, "bad number");
	}
	if (peek(p) == '.') {
		p->pos++;
		if (!digits(p))
			return lex_fail(p, "digit expected after '.'");
	}
	if (peek(p) == 'e' || peek(p) == 'E') {
		p->pos++;
		if (peek(p) == '+' || peek(p) == '-')
			p->pos++;
		if (!digits(p))
			return lex_fail(p, "digit expected in exponent");
	}
	return 0;
}

static int word_token(struct lexer *p)
{
	static const char *const words[] = { "true", "false", "null" };

	for (size_t i = 0; i < 3; i++) {
		size_t n = strlen(words[i]);

		if (p->len - p->pos >= n && memcmp(p->s + p->pos, words[i], n) == 0) {
			p->pos += n;
			return 0;
		}
	}
	return lex_fail(p, "unexpected character '%c'", p->s[p->pos]);
}

static void structural(struct lexer *p, int c)
{
	if (c == '{' || c == '[') {
		if (p->depth < NL_JSON_MAX_DEPTH)
			p->stack[p->depth] = (char)c;
		p->depth++;
	} else if ((c == '}' || c == ']') && p->depth > 0) {
		p->depth--;
	}
	p->key_expected = c == '{' ||
		(c == ',' && p->depth > 0 && p->depth <= NL_JSON_MAX_DEPTH &&
		 p->stack[p->depth - 1] == '{');
	p->pos++;
}

/* The tokens json-c lets through; structure is json-c's to check. */
static int check_tokens(struct lexer *p)
{
	int r = 0;

	while (!r) {
		int c = peek(p);
		bool key = p->key_expected;

		if (c < 0)
			return 0;
		if (strchr(" \t\r\n", c) && c) {
			p->pos++;
			continue;
		}
		p->key_expected = false;
		if (key && c != '"' && c != '}')
			return lex_fail(p, "object key (a string) expected");
		if (c && strchr("{}[],:", c))
			structural(p, c);
		else if (c == '"')
			r = string_token(p);
		else if (c == '-' || is_digit(c))
			r = number_token(p);
		else if (c >= 'a' && c <= 'z')
			r = word_token(p);
		else
			r = lex_fail(p, "unexpected character '%c'", c);
	}
	return r;
}

/* json-c's error, in the words of this reader. */
static const char *tokener_message(enum json_tokener_error e, enum json_tokener_state st,
				   int c, char *buf, size_t len)
{
	switch (e) {
	case json_tokener_error_depth:
		snprintf(buf, len, "nesting deeper than %d", NL_JSON_MAX_DEPTH);
		return buf;
	case json_tokener_error_parse_object_key_name:
		return "object key (a string) expected";
	case json_tokener_error_parse_object_key_sep:
		return "':' expected after object key";
	case json_tokener_error_parse_object_value_sep:
		return "',' or '}' expected";
	case json_tokener_error_parse_array:
		return "',' or ']' expected";
	case json_tokener_error_parse_utf8_string:
		return "invalid UTF-8 in string";
	default:
		break;
	}
	if (e == json_tokener_error_parse_string && st == json_tokener_state_escape_unicode)
		return "bad hex digit in \\u escape";
	if (e == json_tokener_error_parse_string && st == json_tokener_state_string_escape) {
		snprintf(buf, len, "bad escape '\\%c'", c);
		return buf;
	}
	if (st == json_tokener_state_finish)
		return "trailing data after the JSON value";
	if (st == json_tokener_state_object_field_start_after_sep)
		return "object key (a string) expected";
	if (c < 0)
		return "unexpected end of input";
	snprintf(buf, len, "unexpected character '%c'", c);
	return buf;
}

static struct json_object *tokenize(const char *text, size_t len, struct json_tokener *tok,
				    size_t *at)
{
	struct json_object *o = json_tokener_parse_ex(tok, text, (int)len);

	*at = json_tokener_get_parse_end(tok);
	/* a number or literal at the very end needs the end of input to finish */
	if (!o && json_tokener_get_error(tok) == json_tokener_continue && *at == len)
		o = json_tokener_parse_ex(tok, "", 1);
	return o;
}

static bool at_end(enum json_tokener_error e)
{
	return e == json_tokener_continue || e == json_tokener_error_parse_eof;
}

static struct nl_json *convert(struct json_object *o);

int nl_json_parse(const char *text, size_t len, struct nl_json **out, char *err, size_t errlen)
{
	struct lexer lx = { .s = text, .len = len };
	struct json_tokener *tok;
	struct json_object *o;
	enum json_tokener_error e;
	size_t at = 0;
	int lr;
	char buf[64];

	if (len > (size_t)0x7fffffff)
		return nl_errf(err, errlen, -EFBIG, "JSON text too large");
	tok = json_tokener_new_ex(NL_JSON_MAX_DEPTH);
	if (!tok)
		return -ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = tokenize(text, len, tok, &at);
	e = o ? json_tokener_success : json_tokener_get_error(tok);
	lr = check_tokens(&lx);
	if (lr && (o || at_end(e) || lx.pos < at)) {
		nl_errf(err, errlen, -EINVAL, "JSON error at byte %zu: %s", lx.pos, lx.msg);
	} else if (!o) {
		if (at_end(e))
			at = len;
		lr = nl_errf(err, errlen, -EINVAL, "JSON error at byte %zu: %s", at,
			     tokener_message(e, tok->stack[tok->depth].state,
					     at < len ? (unsigned char)text[at] : -1, buf,
					     sizeof(buf)));
	} else if (!(*out = convert(o))) {
		lr = -ENOMEM;
	}
	json_object_put(o);
	json_tokener_free(tok);
	return lr;
}

/* ---- json-c's tree as the read-only view the import code walks ---- */

static int convert_string(struct json_object *o, struct nl_json *j)
{
	int n = json_object_get_string_len(o);

	j->type = NL_JSON_STRING;
	j->str = malloc((size_t)n + 1);
	if (!j->str)
		return -ENOMEM;
	memcpy(j->str, json_object_get_string(o), (size_t)n);
	j->str[n] = '\0';
	j->str_len = (size_t)n;
	return 0;
}

/* json-c clamps integers beyond int64 (and holds up to UINT64_MAX): those
 * stay numbers, never sizes. */
static void convert_number(struct json_object *o, struct nl_json *j)
{
	int64_t i = json_object_get_int64(o);
	uint64_t u = json_object_get_uint64(o);

	j->type = NL_JSON_NUMBER;
	j->number = json_object_get_double(o);
	if (!json_object_is_type(o, json_type_int))
		return;
	j->is_int = i < 0 || u <= (uint64_t)INT64_MAX;
	j->integer = i;
	if (!j->is_int)
		j->number = (double)u;
}

static int convert_children(struct json_object *o, struct nl_json *j)
{
	size_t n = j->type == NL_JSON_ARRAY ? json_object_array_length(o)
					    : (size_t)json_object_object_length(o);

	j->items = calloc(n ? n : 1, sizeof(*j->items));
	if (j->type == NL_JSON_OBJECT)
		j->keys = calloc(n ? n : 1, sizeof(*j->keys));
	if (!j->items || (j->type == NL_JSON_OBJECT && !j->keys))
		return -ENOMEM;
	if (j->type == NL_JSON_ARRAY) {
		for (size_t i = 0; i < n; i++, j->count++)
			if (!(j->items[i] = convert(json_object_array_get_idx(o, i))))
				return -ENOMEM;
		return 0;
	}
	json_object_object_foreach(o, key, val) {
		j->keys[j->count] = strdup(key);
		j->items[j->count] = convert(val);
		j->count++;
		if (!j->keys[j->count - 1] || !j->items[j->count - 1])
			return -ENOMEM;
	}
	return 0;
}

static struct nl_json *convert(struct json_object *o)
{
	struct nl_json *j = calloc(1, sizeof(*j));
	int r = 0;

	if (!j)
		return NULL;
	switch (json_object_get_type(o)) {
	case json_type_null:
		j->type = NL_JSON_NULL;
		break;
	case json_type_boolean:
		j->type = NL_JSON_BOOL;
		j->boolean = json_object_get_boolean(o);
		break;
	case json_type_int:
	case json_type_double:
		convert_number(o, j);
		break;
	case json_type_string:
		r = convert_string(o, j);
		break;
	case json_type_array:
		j->type = NL_JSON_ARRAY;
		r = convert_children(o, j);
		break;
	case json_type_object:
		j->type = NL_JSON_OBJECT;
		r = convert_children(o, j);
		break;
	}
	if (r) {
		nl_json_free(j);
		return NULL;
	}
	return j;
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
