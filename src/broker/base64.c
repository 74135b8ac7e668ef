/*
 * base64.c - RFC 4648 base64 with the standard alphabet and '=' padding,
 * which is what kombu uses for properties.body_encoding = "base64".
 *
 * Decoding is strict: the length must be a multiple of four, padding may
 * only close the input, and any other byte (whitespace included) makes
 * the input invalid.  A message whose body does not decode cleanly is
 * refused rather than guessed at.
 */
#include <stdlib.h>
#include <string.h>

#include "broker/message.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Value of a base64 digit, or -1 if c is not one. */
static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * Encode len bytes of in into out, which has room for
 * MSG_BASE64_LEN(len) bytes; no NUL is written.  Returns the length.
 * For callers that place the text inside a larger buffer (an envelope)
 * and would otherwise allocate and copy it.
 */
size_t
msg_base64_encode_buf(char *out, const unsigned char *in, size_t len)
{
	char		*p = out;
	size_t		 i;
	uint32_t	 v;

	for (i = 0; i + 3 <= len; i += 3) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		*p++ = b64_alphabet[v >> 18 & 0x3f];
		*p++ = b64_alphabet[v >> 12 & 0x3f];
		*p++ = b64_alphabet[v >> 6 & 0x3f];
		*p++ = b64_alphabet[v & 0x3f];
	}
	if (len - i == 1) {
		v = (uint32_t)in[i] << 16;
		*p++ = b64_alphabet[v >> 18 & 0x3f];
		*p++ = b64_alphabet[v >> 12 & 0x3f];
		*p++ = '=';
		*p++ = '=';
	} else if (len - i == 2) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		*p++ = b64_alphabet[v >> 18 & 0x3f];
		*p++ = b64_alphabet[v >> 12 & 0x3f];
		*p++ = b64_alphabet[v >> 6 & 0x3f];
		*p++ = '=';
	}
	return (size_t)(p - out);
}

char *
msg_base64_encode(const unsigned char *in, size_t len)
{
	char	*out;
	size_t	 olen;

	if (in == NULL && len != 0)
		return NULL;
	/* Overflow guard: 4 * ceil(len / 3) + 1 must fit in a size_t. */
	if (len > (SIZE_MAX - 1) / 4 * 3 - 3)
		return NULL;
	olen = MSG_BASE64_LEN(len);
	if ((out = malloc(olen + 1)) == NULL)
		return NULL;
	out[msg_base64_encode_buf(out, in, len)] = '\0';
	return out;
}

/*
 * Decode len bytes of s.  The result is NUL-terminated (not counted in
 * *outlen) so that a decoded JSON text can be handed to string functions.
 */
unsigned char *
msg_base64_decode(const char *s, size_t len, size_t *outlen)
{
	unsigned char	*out, *p;
	size_t		 i, pad;
	int		 a, b, c, d;

	if (outlen != NULL)
		*outlen = 0;
	if ((s == NULL && len != 0) || len % 4 != 0)
		return NULL;
	pad = 0;
	if (len > 0 && s[len - 1] == '=') {
		pad++;
		if (s[len - 2] == '=')
			pad++;
	}
	if ((out = malloc(len / 4 * 3 + 1)) == NULL)
		return NULL;
	p = out;
	for (i = 0; i < len; i += 4) {
		a = b64_value((unsigned char)s[i]);
		b = b64_value((unsigned char)s[i + 1]);
		if (i + 4 == len && pad > 0) {
			/* The last quantum: "xx==" or "xxx=". */
			c = pad == 2 ? 0 : b64_value((unsigned char)s[i + 2]);
			d = 0;
		} else {
			c = b64_value((unsigned char)s[i + 2]);
			d = b64_value((unsigned char)s[i + 3]);
		}
		if (a < 0 || b < 0 || c < 0 || d < 0) {
			free(out);
			return NULL;
		}
		*p++ = (unsigned char)(a << 2 | b >> 4);
		if (i + 4 == len && pad == 2)
			break;
		*p++ = (unsigned char)((b & 0xf) << 4 | c >> 2);
		if (i + 4 == len && pad == 1)
			break;
		*p++ = (unsigned char)((c & 0x3) << 6 | d);
	}
	*p = '\0';
	if (outlen != NULL)
		*outlen = (size_t)(p - out);
	return out;
}
