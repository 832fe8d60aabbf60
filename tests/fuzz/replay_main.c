/* Runs a libFuzzer target over corpus files without libFuzzer: how CI replays the checked-in corpus. */
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#ifndef VMLWC_REPLAY_SANITIZERS
#define VMLWC_REPLAY_SANITIZERS ""
#endif

static const char *current; /* the input being run: named when it ends the replay */

static void on_fatal(int sig)
{
	static const char pre[] = "replay: ended by a signal in ";

	if (current) {
		(void)!write(2, pre, sizeof(pre) - 1);
		(void)!write(2, current, strlen(current));
		(void)!write(2, "\n", 1);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long n;

	if (!f || fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) < 0) {
		fprintf(stderr, "replay: cannot read %s\n", path);
		exit(2);
	}
	buf = malloc((size_t)n + 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "replay: cannot read %s\n", path);
		exit(2);
	}
	fclose(f);
	current = path;
	LLVMFuzzerTestOneInput(buf, (size_t)n);
	current = NULL;
	free(buf);
	return 1;
}

int main(int argc, char **argv)
{
	int files = 0;

	printf("replay: built with %s%s\n", VMLWC_REPLAY_SANITIZERS[0] ? "-fsanitize=" : "no sanitizer",
	       VMLWC_REPLAY_SANITIZERS);
	fflush(stdout);
	signal(SIGABRT, on_fatal); /* the harness's checks, and the sanitizers' reports (abort_on_error=1) */
	if (!strstr(VMLWC_REPLAY_SANITIZERS, "address")) { /* ASan has its own, which reports */
		signal(SIGSEGV, on_fatal);
		signal(SIGBUS, on_fatal);
	}
	LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "replay: %s: no such file or directory\n", argv[i]);
			return 2;
		}
		if (!S_ISDIR(st.st_mode)) {
			files += run_file(argv[i]);
			continue;
		}
		DIR *d = opendir(argv[i]);
		struct dirent *e;
		while (d && (e = readdir(d))) {
			char p[4096];
			if (e->d_name[0] == '.')
				continue;
			snprintf(p, sizeof(p), "%s/%s", argv[i], e->d_name);
			files += run_file(p);
		}
		if (d)
			closedir(d);
	}
	if (files == 0) {
		fprintf(stderr, "replay: no corpus input found: nothing was tested\n");
		return 2;
	}
	printf("replay: %d inputs, no crash\n", files);
	return 0;
}
