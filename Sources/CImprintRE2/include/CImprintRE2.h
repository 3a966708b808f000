#ifndef CIMPRINT_RE2_H
#define CIMPRINT_RE2_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// A compiled RE2 expression (RE2 is the C++ engine Go's regexp package was ported from: the same syntax,
/// linear-time matching).
typedef struct CImprintRE2 CImprintRE2;

/// Compiles `pattern` (UTF-8, `length` bytes). Returns NULL on a syntax error and writes RE2's reason
/// (NUL-terminated, truncated to `errorCapacity`) into `error`.
CImprintRE2 *CImprintRE2_compile(const char *pattern, size_t length, char *error, size_t errorCapacity);

/// 1 when `text` contains a match (Go's `Regexp.MatchString`: unanchored unless the expression anchors), else 0.
int CImprintRE2_search(const CImprintRE2 *re, const char *text, size_t length);

void CImprintRE2_free(CImprintRE2 *re);

#ifdef __cplusplus
}
#endif

#endif
