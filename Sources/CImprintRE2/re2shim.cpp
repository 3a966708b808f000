// A C face for the few RE2 calls imprint makes: compile, search, free.
#include "CImprintRE2.h"

#include <re2/re2.h>
#include <cstdio>
#include <cstring>
#include <new>

struct CImprintRE2 {
    RE2 *re;
};

extern "C" CImprintRE2 *CImprintRE2_compile(const char *pattern, size_t length, char *error, size_t errorCapacity) {
    RE2::Options options;
    options.set_log_errors(false);         // errors are returned, never printed
    options.set_encoding(RE2::Options::EncodingUTF8);
    options.set_max_mem(64 << 20);          // room for long patterns of Unicode classes
    RE2 *re = new (std::nothrow) RE2(re2::StringPiece(pattern, length), options);
    if (re == nullptr) {
        if (errorCapacity > 0) std::snprintf(error, errorCapacity, "out of memory");
        return nullptr;
    }
    if (!re->ok()) {
        if (errorCapacity > 0) {
            std::strncpy(error, re->error().c_str(), errorCapacity - 1);
            error[errorCapacity - 1] = 0;
        }
        delete re;
        return nullptr;
    }
    CImprintRE2 *box = new (std::nothrow) CImprintRE2{re};
    if (box == nullptr) {
        delete re;
        if (errorCapacity > 0) std::snprintf(error, errorCapacity, "out of memory");
    }
    return box;
}

extern "C" int CImprintRE2_search(const CImprintRE2 *re, const char *text, size_t length) {
    return RE2::PartialMatch(re2::StringPiece(text, length), *re->re) ? 1 : 0;
}

extern "C" void CImprintRE2_free(CImprintRE2 *re) {
    if (re == nullptr) return;
    delete re->re;
    delete re;
}
