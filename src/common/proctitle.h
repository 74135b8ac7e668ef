/*
 * proctitle.h - process titles ("celeriacd: worker reports#1 busy NAME"),
 * so ps(1) shows what each child is doing.
 */
#ifndef CELERIAC_PROCTITLE_H
#define CELERIAC_PROCTITLE_H

void	proctitle_init(int argc, char **argv);
/* After fork: the next title also names the process (comm). */
void	proctitle_new_process(void);
extern char **proctitle_environ;

void	proctitle_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
