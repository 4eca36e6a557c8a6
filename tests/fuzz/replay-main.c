/* The replay runner of the fuzz targets built without libFuzzer (`make
 * check`): runs LLVMFuzzerTestOneInput over each file named on the command
 * line, each in a child process, and prints one TAP line per file. */
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include <glib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Seconds one corpus file may take (far above what one takes under ASan). */
#define REPLAY_TIMEOUT 120

/* Replays file number n in a child (a crash, an abort or a sanitizer
 * report fails that file only) and prints its TAP line; true when it
 * passed. What the child printed (the library's check lines, a failed
 * assertion) is shown only on failure. */
static bool replay_one(const char *file, int n)
{
    FILE *log = tmpfile();
    pid_t pid;
    int status;
    bool ok;

    if (!log) {
        perror("tmpfile");
        return false;
    }
    fflush(stdout);     /* or the child would print it again */
    pid = fork();
    if (pid < 0) {
        perror("fork");
        fclose(log);
        return false;
    }
    if (pid == 0) {
        g_autofree char *data = NULL;
        gsize len;

        dup2(fileno(log), STDOUT_FILENO);
        dup2(fileno(log), STDERR_FILENO);
        alarm(REPLAY_TIMEOUT);
        if (!g_file_get_contents(file, &data, &len, NULL)) {
            fprintf(stderr, "cannot read %s\n", file);
            exit(1);
        }
        LLVMFuzzerTestOneInput((const uint8_t *)data, len);
        exit(0);
    }
    if (waitpid(pid, &status, 0) != pid) {
        perror("waitpid");
        fclose(log);
        return false;
    }
    ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    printf("%sok %d - %s\n", ok ? "" : "not ", n, file);
    if (!ok) {
        char line[1024];
        int lines = 0, skip;

        /* The last 40 lines: the reason comes last. */
        rewind(log);
        while (fgets(line, sizeof(line), log)) {
            lines++;
        }
        rewind(log);
        for (skip = lines - 40; fgets(line, sizeof(line), log); skip--) {
            if (skip <= 0) {
                printf("    %s", line);
            }
        }
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
            printf("    timed out after %d s\n", REPLAY_TIMEOUT);
        } else if (WIFSIGNALED(status)) {
            printf("    killed by signal %d\n", WTERMSIG(status));
        } else {
            printf("    exit %d\n", WEXITSTATUS(status));
        }
    }
    fclose(log);
    return ok;
}

int main(int argc, char **argv)
{
    int passed = 0, failed = 0;

    for (int i = 1; i < argc; i++) {
        bool ok = replay_one(argv[i], i);

        passed += ok;
        failed += !ok;
    }
    printf("%s replay: %d passed, %d failed\n", FUZZ_TARGET, passed, failed);
    return failed ? 1 : 0;
}
