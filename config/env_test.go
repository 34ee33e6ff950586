package config

import (
	"slices"
	"testing"
)

func TestExpandEnv(t *testing.T) {
	env := map[string]string{"HOST": "mimir", "TOKEN": "s3cr3t", "EMPTY": "", "MULTI": "a\nb"}
	lookup := func(n string) (string, bool) { v, ok := env[n]; return v, ok }
	tests := []struct {
		name, in, want string
		errs           []string
	}{
		{"variable_is_replaced", "url: http://${HOST}:8080/push\n", "url: http://mimir:8080/push\n", nil},
		{"set_but_empty_variable_is_replaced", "a: x${EMPTY}y\n", "a: xy\n", nil},
		{"double_dollar_is_a_literal_dollar", "a: $${HOST} costs $$5\n", "a: ${HOST} costs $5\n", nil},
		{"lone_dollar_stays", `match: '{path=~"^/api$"}'` + "\n", `match: '{path=~"^/api$"}'` + "\n", nil},
		{"inside_double_quotes", "t: \"Bearer ${TOKEN}\"\n", "t: \"Bearer s3cr3t\"\n", nil},
		{"comment_is_left_alone", "# bearer_token: ${UNSET} $$\na: 1 # ${UNSET}\n", "# bearer_token: ${UNSET} $$\na: 1 # ${UNSET}\n", nil},
		{"hash_inside_quotes_is_not_a_comment", "a: \"x #${HOST}\"\nb: 'y #${HOST}'\n", "a: \"x #mimir\"\nb: 'y #mimir'\n", nil},
		{"escaped_quotes_do_not_end_strings", "a: \"q\\\" #${HOST}\"\nb: 'it''s #${HOST}'\n", "a: \"q\\\" #mimir\"\nb: 'it''s #mimir'\n", nil},
		{"apostrophe_in_plain_scalar_is_not_a_quote", "a: don't # ${UNSET}\n", "a: don't # ${UNSET}\n", nil},
		{"hash_without_space_is_not_a_comment", "a: x#${HOST}\n", "a: x#mimir\n", nil},
		{"every_unset_variable_is_reported", "a: ${NOPE}\nb: ok\nc: ${ALSO_NOPE} ${NOPE}\n", "", []string{
			`cfg.yaml:1: environment variable "NOPE" is not set (write $${NOPE} for the literal text)`,
			`cfg.yaml:3: environment variable "ALSO_NOPE" is not set (write $${ALSO_NOPE} for the literal text)`,
			`cfg.yaml:3: environment variable "NOPE" is not set (write $${NOPE} for the literal text)`}},
		{"unterminated_reference", "a: ${HOST\n", "", []string{
			"cfg.yaml:1: unterminated ${ (write $$ for a literal $)"}},
		{"defaults_are_not_supported", "a: ${HOST:-x}\n", "", []string{
			`cfg.yaml:1: invalid environment variable reference "${HOST:-x}": write ${NAME} with NAME made of letters, digits and _ (defaults like ${NAME:-x} are not supported; $$ is a literal $)`}},
		{"multi_line_value_is_refused", "a: ${MULTI}\n", "", []string{
			`cfg.yaml:1: environment variable "MULTI" contains a line break; put multi-line values in a file (e.g. password_file)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errs := expandEnv([]byte(tt.in), "cfg.yaml", lookup)
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			if !slices.Equal(got, tt.errs) {
				t.Fatalf("errors:\n got %q\nwant %q", got, tt.errs)
			}
			if tt.errs == nil && string(out) != tt.want {
				t.Errorf("expanded:\n got %q\nwant %q", out, tt.want)
			}
		})
	}
}

func TestParseExpandsEnvironment(t *testing.T) {
	text := `
aggregator:
  downstream_url: "${RW_URL}"
downstream:
  remote_write:
    - url: http://b/write
      bearer_token: ${TOKEN}
`
	cfg, err := memLoader(map[string]string{"RW_URL": "http://a:9090/write", "TOKEN": "t0k"}, nil).Parse([]byte(text), "cardinal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rw := cfg.Downstream.RemoteWrite
	if rw[0].BearerToken != "t0k" || rw[1].URL != "http://a:9090/write" {
		t.Errorf("remote_write = %+v", rw)
	}

	_, err = memLoader(map[string]string{"RW_URL": "http://a/write"}, nil).Parse([]byte(text), "cardinal.yaml")
	want := []string{`cardinal.yaml:7: environment variable "TOKEN" is not set (write $${TOKEN} for the literal text)`}
	if got := errorLines(err); !slices.Equal(got, want) {
		t.Errorf("errors:\n got %q\nwant %q", got, want)
	}
}
