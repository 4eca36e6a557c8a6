/* Sanitizer defaults of the libFuzzer build (linked only there): a smaller
 * quarantine of freed memory. Every input opens images whose tables and
 * caches are big allocations; with ASan's 256 MiB quarantine each of them
 * came from fresh pages, and page faults and clearing took most of an
 * execution. 16 MiB still holds the blocks one input frees, so a use after
 * free within an input is still caught. ASAN_OPTIONS overrides this. */
const char *__asan_default_options(void);

const char *__asan_default_options(void)
{
    return "quarantine_size_mb=16";
}
