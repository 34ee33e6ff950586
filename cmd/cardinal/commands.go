package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/cardinal-proxy/cardinal/cmd/cardinal/loadgen"
	"github.com/cardinal-proxy/cardinal/cmd/cardinal/ruletest"
	"github.com/cardinal-proxy/cardinal/config/setting"
)

// command is one subcommand: its words (check config), what it takes and how it runs.
type command struct {
	words []string
	args  string // what follows the words, for the usage line
	help  string
	// run gets the arguments after the words; it returns the exit code.
	run func(args []string, stdout, stderr io.Writer) int
	// ownFlags: the command parses its own flags and --help (loadgen).
	ownFlags bool
	// switches are the boolean flags the command takes, with what each does; run gets them
	// among its arguments.
	switches map[string]string
}

// commands lists the subcommands, in the order the usage shows them.
func commands() []command {
	return []command{
		{words: []string{"check", "config"}, args: "[--syntax-only] FILE...", help: "validate configuration files, as start-up does", run: checkConfig,
			switches: map[string]string{"--syntax-only": "check the settings only, without reading the certificate, password and token files they name"}},
		{words: []string{"check", "rules"}, args: "FILE...", help: "validate rule files on their own", run: checkRules},
		{words: []string{"test", "rules"}, args: "FILE...", help: "run rule unit tests", run: testRules},
		{words: []string{"suggest"}, args: "(--url URL | --file FILE) [flags]", help: "write rules for the metrics with the most series (suggest --help)", run: runSuggest, ownFlags: true},
		{words: []string{"loadgen"}, args: "[flags]", help: "generate remote-write load (loadgen --help)", run: runLoadgen, ownFlags: true},
		{words: []string{"version"}, help: "print the version", run: func(_ []string, stdout, _ io.Writer) int { printVersion(stdout); return 0 }},
	}
}

// usageText is the synopsis of every way to run cardinal.
func usageText() string {
	var b strings.Builder
	b.WriteString("usage:\n")
	fmt.Fprintf(&b, "  %-46s %s\n", "cardinal [--config.file=cardinal.yaml] [flags]", "run the proxy (flags below)")
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-46s %s\n", strings.TrimSpace("cardinal "+strings.Join(c.words, " ")+" "+c.args), c.help)
	}
	return strings.TrimRight(b.String(), "\n")
}

// run dispatches to a subcommand or runs the proxy, and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		setGCPercent()
		return serve(args, stdout, stderr)
	}
	if args[0] == "help" {
		printServerHelp(stdout)
		return 0
	}
	cmds := commands()
	for _, c := range cmds {
		if len(args) < len(c.words) || !slices.Equal(args[:len(c.words)], c.words) {
			continue
		}
		rest := args[len(c.words):]
		if !c.ownFlags {
			if code, done := commonFlags(c, rest, stdout, stderr); done {
				return code
			}
		}
		return c.run(rest, stdout, stderr)
	}
	return usageError(stderr, wrongCommand(args, cmds))
}

// commonFlags handles what a subcommand without flags of its own is given: --help prints its
// usage (exit 0), any other flag is an error (exit 2), and FILE... must not be empty.
func commonFlags(c command, args []string, stdout, stderr io.Writer) (int, bool) {
	line := strings.TrimSpace("cardinal " + strings.Join(c.words, " ") + " " + c.args)
	files := 0
	for _, a := range args {
		switch {
		case a == "-h" || a == "-help" || a == "--help":
			fmt.Fprintf(stdout, "usage: %s\n  %s\n", line, c.help)
			for _, name := range slices.Sorted(maps.Keys(c.switches)) {
				fmt.Fprintf(stdout, "  %s: %s\n", name, c.switches[name])
			}
			return 0, true
		case c.switches[a] != "":
		case strings.HasPrefix(a, "-") && a != "-":
			none := ""
			if len(c.switches) == 0 {
				none = " (it takes no flags)"
			}
			fmt.Fprintf(stderr, "cardinal %s: unknown flag %s%s\nusage: %s\n", strings.Join(c.words, " "), a, none, line)
			return 2, true
		default:
			files++
		}
	}
	if strings.HasSuffix(c.args, "FILE...") && files == 0 {
		fmt.Fprintf(stderr, "cardinal %s: no file given\nusage: %s\n", strings.Join(c.words, " "), line)
		return 2, true
	}
	return 0, false
}

// wrongCommand says what is wrong with args, which match no command, and what would be right.
func wrongCommand(args []string, cmds []command) string {
	var firsts []string
	for _, c := range cmds {
		if !slices.Contains(firsts, c.words[0]) {
			firsts = append(firsts, c.words[0])
		}
	}
	if slices.Contains(firsts, args[0]) {
		var seconds []string
		for _, c := range cmds {
			if c.words[0] == args[0] && len(c.words) > 1 {
				seconds = append(seconds, c.words[1])
			}
		}
		if len(args) == 1 {
			return fmt.Sprintf("cardinal %s: say what: %s", args[0], strings.Join(seconds, " or "))
		}
		msg := fmt.Sprintf("cardinal %s: unknown %q (want %s)", args[0], args[1], strings.Join(seconds, " or "))
		if best := setting.Closest(args[1], seconds); best != "" {
			msg = fmt.Sprintf("cardinal %s: unknown %q; did you mean \"%s %s\"?", args[0], args[1], args[0], best)
		}
		return msg
	}
	if best := setting.Closest(args[0], append(firsts, "help")); best != "" {
		return fmt.Sprintf("cardinal: unknown command %q; did you mean %q?", args[0], best)
	}
	if slices.Contains([]string{"run", "serve", "start", "server"}, args[0]) {
		return fmt.Sprintf("cardinal: unknown command %q: to run the proxy, give no command: cardinal --config.file=cardinal.yaml", args[0])
	}
	if strings.HasSuffix(args[0], ".yaml") || strings.HasSuffix(args[0], ".yml") {
		return fmt.Sprintf("cardinal: unexpected argument %q; did you mean --config.file=%s?", args[0], args[0])
	}
	return fmt.Sprintf("cardinal: unknown command %q (commands: %s)", args[0], strings.Join(firsts, ", "))
}

// usageError prints what was wrong, then the usage, and returns exit code 2.
func usageError(stderr io.Writer, msg string) int {
	fmt.Fprintf(stderr, "%s\n\n%s\n", msg, usageText())
	return 2
}

func testRules(files []string, stdout, _ io.Writer) int {
	if !ruletest.Run(files, stdout) {
		return 1
	}
	return 0
}

func runLoadgen(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := loadgen.Run(ctx, args, stdout); err != nil {
		fmt.Fprintln(stderr, "cardinal loadgen:", err)
		if errors.Is(err, loadgen.ErrUsage) {
			return 2
		}
		return 1
	}
	return 0
}

// printServerHelp prints the usage and the proxy's flags.
func printServerHelp(w io.Writer) {
	fs, _ := newFlagSet()
	fmt.Fprintf(w, "%s\n\nflags of the proxy:\n", usageText())
	fs.SetOutput(w)
	fs.PrintDefaults()
}

// flagError rewords an error of fs.Parse and, for an unknown flag, names the defined flag
// closest to it ("unknown flag --x; did you mean --y?").
func flagError(fs *flag.FlagSet, err error) string {
	const undefined = "flag provided but not defined: -"
	msg := err.Error()
	if !strings.HasPrefix(msg, undefined) {
		return msg
	}
	name := strings.TrimLeft(strings.TrimPrefix(msg, undefined), "-")
	msg = "unknown flag --" + name
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	if best := setting.Closest(name, names); best != "" {
		return msg + fmt.Sprintf("; did you mean --%s?", best)
	}
	return msg
}
