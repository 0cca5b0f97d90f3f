/* Wide-character ncurses for Swift: the macros and globals Swift 6 cannot use, as functions. */
#ifndef CNCURSESW_SHIM_H
#define CNCURSESW_SHIM_H

#define _XOPEN_SOURCE_EXTENDED 1
#define NCURSES_WIDECHAR 1
#include <locale.h>
#include <wchar.h>
#include <ncursesw/curses.h>

static inline WINDOW *pt_stdscr(void) { return stdscr; }
static inline int pt_lines(void) { return LINES; }
static inline int pt_cols(void) { return COLS; }
static inline int pt_colors(void) { return COLORS; }
static inline int pt_key_f(int n) { return KEY_F(n); }
static inline void pt_set_escdelay(int ms) { set_escdelay(ms); }
static const attr_t PT_A_NORMAL = A_NORMAL;
static const attr_t PT_A_BOLD = A_BOLD;
static const attr_t PT_A_REVERSE = A_REVERSE;
static const attr_t PT_A_DIM = A_DIM;
static const attr_t PT_A_UNDERLINE = A_UNDERLINE;
static inline attr_t pt_color_pair(short n) { return (attr_t)COLOR_PAIR(n); }

/* From <ncursesw/term.h>, declared alone: that header's capability macros (lines, columns, …)
   would leak into every Swift file importing this module. */
extern char *tigetstr(const char *);
extern int tigetflag(const char *);
/* Whether the terminal takes 24-bit colours directly (terminfo's RGB flag). */
static inline int pt_terminfo_flag(const char *name) { return tigetflag(name) > 0; }
/* A colour pair of any colour numbers, 24-bit ones included (ncurses 6.1). */
static inline int pt_init_pair(int pair, int foreground, int background) {
    return init_extended_pair(pair, foreground, background);
}
/* A terminfo string capability, or NULL when the terminal has none. */
static inline const char *pt_terminfo_string(const char *name) {
    char *value = tigetstr(name);
    return (value == NULL || value == (char *)-1) ? NULL : value;
}

#endif
