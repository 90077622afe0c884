/* log: one line per event on stderr: time, process, level, message. */
#ifndef LOG_H
#define LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

extern int log_threshold;

/* Name the process in every line ("broker", "worker-2"). */
void log_init(const char *process, int level);
/* "error" "warn" "info" "debug" -> level; -1 if unknown. */
int log_level_parse(const char *s);
void log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The macros skip formatting when the level is off. */
#define LOG(level, ...)                        \
    do {                                       \
        if ((level) <= log_threshold)          \
            log_write((level), __VA_ARGS__);   \
    } while (0)
#define log_error(...) LOG(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) LOG(LOG_WARN, __VA_ARGS__)
#define log_info(...) LOG(LOG_INFO, __VA_ARGS__)
#define log_debug(...) LOG(LOG_DEBUG, __VA_ARGS__)

#endif
