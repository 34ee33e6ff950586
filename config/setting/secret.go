package setting

// Secret is a credential from the configuration (a password, a token, a DSN). It prints and
// marshals as "<secret>" so that logging or showing the configuration does not leak it; use
// string(s) to get the value.
type Secret string

const redacted = "<secret>"

// String hides the value.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// MarshalYAML hides the value.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }
