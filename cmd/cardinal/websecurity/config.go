package websecurity

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"golang.org/x/crypto/bcrypt"
	"gopkg.in/yaml.v3"

	"github.com/cardinal-proxy/cardinal/config/setting"
)

// ErrInvalidConfig is what every problem with --web.config.file wraps.
var ErrInvalidConfig = errors.New("invalid web configuration")

// webConfig is the --web.config.file, in the format of Prometheus's exporter-toolkit (the
// web.config.file of Prometheus and its exporters), so one file can serve both. It secures
// every HTTP endpoint but /-/healthy and /-/ready: the receiver, /metrics, the status page,
// /-/reload and pprof.
type webConfig struct {
	// TLSServerConfig turns on TLS; nil serves plain HTTP.
	TLSServerConfig *tlsServerConfig `yaml:"tls_server_config"`
	// BasicAuthUsers maps user names to bcrypt hashes of their passwords.
	BasicAuthUsers map[string]setting.Secret `yaml:"basic_auth_users"`
	// BearerTokenFile (an extension of the format) holds a token that clients may present
	// as "Authorization: Bearer <token>" instead of a user and password. A relative path is
	// resolved against the web config file's directory.
	BearerTokenFile string `yaml:"bearer_token_file"`

	// bearerToken is the content of BearerTokenFile.
	bearerToken setting.Secret
}

// tlsServerConfig is the receiver's certificate; both files are read again when they change.
type tlsServerConfig struct {
	// CertFile and KeyFile are PEM files; relative paths are resolved against the web config
	// file's directory.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// MinVersion is TLS10, TLS11, TLS12 (the default) or TLS13.
	MinVersion string `yaml:"min_version"`
	// ClientAuthType is the policy for client certificates, named as in exporter-toolkit:
	// NoClientCert (the default), RequestClientCert, RequireAnyClientCert,
	// VerifyClientCertIfGiven or RequireAndVerifyClientCert.
	ClientAuthType string `yaml:"client_auth_type"`
	// ClientCAFile holds the CAs that verify client certificates (default: the system's
	// roots); read again when it changes, like the certificate.
	ClientCAFile string `yaml:"client_ca_file"`
}

// clientAuth returns the client certificate policy, and false for a name it does not know.
func (c *tlsServerConfig) clientAuth() (tls.ClientAuthType, bool) {
	switch c.ClientAuthType {
	case "", "NoClientCert":
		return tls.NoClientCert, true
	case "RequestClientCert":
		return tls.RequestClientCert, true
	case "RequireAnyClientCert", "RequireClientCert": // the second, exporter-toolkit's older name
		return tls.RequireAnyClientCert, true
	case "VerifyClientCertIfGiven":
		return tls.VerifyClientCertIfGiven, true
	case "RequireAndVerifyClientCert":
		return tls.RequireAndVerifyClientCert, true
	}
	return tls.NoClientCert, false
}

// loadClientCAs reads the CA certificates of a client_ca_file.
func loadClientCAs(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no PEM certificate in %s", path)
	}
	return pool, nil
}

// authEnabled reports whether requests must authenticate.
func (c *webConfig) authEnabled() bool {
	return len(c.BasicAuthUsers) > 0 || c.BearerTokenFile != ""
}

// minTLSVersion returns the configured minimum TLS version.
func (c *tlsServerConfig) minTLSVersion() uint16 {
	switch c.MinVersion {
	case "TLS10":
		return tls.VersionTLS10
	case "TLS11":
		return tls.VersionTLS11
	case "TLS13":
		return tls.VersionTLS13
	default:
		return tls.VersionTLS12
	}
}

// loadWebConfig reads and checks a web config file: strict YAML (an unknown key is an error),
// every problem reported as FILE:LINE: message.
func loadWebConfig(path string) (*webConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return parseWebConfig(data, path)
}

// parseWebConfig parses data, the content of the web config file at path.
func parseWebConfig(data []byte, path string) (*webConfig, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, webConfigYAMLError(path, err)
	}
	cfg := &webConfig{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, webConfigYAMLError(path, err)
	}
	dir := filepath.Dir(path)
	var problems []string
	problem := func(line int, format string, args ...any) {
		problems = append(problems, fmt.Sprintf("%s:%d: %s", path, line, fmt.Sprintf(format, args...)))
	}

	if t := cfg.TLSServerConfig; t != nil {
		line := keyLine(&root, "tls_server_config")
		if t.CertFile == "" || t.KeyFile == "" {
			problem(line, "tls_server_config needs both cert_file and key_file")
		} else {
			t.CertFile, t.KeyFile = resolvePath(dir, t.CertFile), resolvePath(dir, t.KeyFile)
			if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
				problem(line, "tls_server_config: loading the certificate: %v", err)
			}
		}
		switch t.MinVersion {
		case "", "TLS10", "TLS11", "TLS12", "TLS13":
		default:
			problem(keyLine(&root, "tls_server_config", "min_version"), "tls_server_config.min_version must be TLS10, TLS11, TLS12 or TLS13, not %q", t.MinVersion)
		}
		auth, ok := t.clientAuth()
		if !ok {
			problem(keyLine(&root, "tls_server_config", "client_auth_type"), "tls_server_config.client_auth_type must be NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert, not %q", t.ClientAuthType)
		}
		if t.ClientCAFile != "" {
			line := keyLine(&root, "tls_server_config", "client_ca_file")
			t.ClientCAFile = resolvePath(dir, t.ClientCAFile)
			if _, err := loadClientCAs(t.ClientCAFile); err != nil {
				problem(line, "tls_server_config.client_ca_file: %v", err)
			}
			if ok && auth == tls.NoClientCert {
				// As exporter-toolkit: a CA that nothing uses is a mistake, not a default.
				problem(line, "tls_server_config.client_ca_file is set but client_auth_type is NoClientCert: set client_auth_type to RequireAndVerifyClientCert (or VerifyClientCertIfGiven) for it to be used")
			}
		}
	}
	for user, hash := range cfg.BasicAuthUsers {
		line := keyLine(&root, "basic_auth_users", user)
		if user == "" {
			problem(line, "basic_auth_users: empty user name")
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			// Never quote the hash: it is a secret too.
			problem(line, "basic_auth_users: the password of %q is not a bcrypt hash (%v); make one with htpasswd -nBC 10 %s", user, err, user)
		}
	}
	if cfg.BearerTokenFile != "" {
		cfg.BearerTokenFile = resolvePath(dir, cfg.BearerTokenFile)
		b, err := os.ReadFile(cfg.BearerTokenFile)
		token := strings.TrimSpace(string(b))
		switch {
		case err != nil:
			problem(keyLine(&root, "bearer_token_file"), "bearer_token_file: %v", err)
		case token == "":
			problem(keyLine(&root, "bearer_token_file"), "bearer_token_file %s is empty", cfg.BearerTokenFile)
		}
		cfg.bearerToken = setting.Secret(token)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w:\n%s", ErrInvalidConfig, strings.Join(problems, "\n"))
	}
	return cfg, nil
}

// resolvePath resolves a relative path against dir.
func resolvePath(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

var (
	yamlLineRE = regexp.MustCompile(`line (\d+): (.*)`)
	// yamlTypeRE matches the package-qualified Go type in a YAML unknown-field error, which
	// the user reads as the section of the file.
	yamlTypeRE = regexp.MustCompile(`not found in type [\w.]*\.`)
)

// webConfigYAMLError turns a YAML decoding error into FILE:LINE: message lines.
func webConfigYAMLError(path string, err error) error {
	var lines []string
	for _, l := range strings.Split(err.Error(), "\n") {
		if m := yamlLineRE.FindStringSubmatch(l); m != nil {
			msg := yamlTypeRE.ReplaceAllLiteralString(m[2], "is not a key of ")
			lines = append(lines, fmt.Sprintf("%s:%s: %s", path, m[1], msg))
		}
	}
	if len(lines) == 0 {
		lines = append(lines, fmt.Sprintf("%s: %v", path, err))
	}
	return fmt.Errorf("%w:\n%s", ErrInvalidConfig, strings.Join(lines, "\n"))
}

// keyLine returns the line of the value at the path of mapping keys in the document root,
// or of the deepest key found (1 when none is).
func keyLine(root *yaml.Node, path ...string) int {
	n, line := root, 1
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for _, key := range path {
		if n.Kind != yaml.MappingNode {
			return line
		}
		found := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				line, n, found = n.Content[i].Line, n.Content[i+1], true
				break
			}
		}
		if !found {
			return line
		}
	}
	return line
}

// describe summarises the configuration for the log, without any secret.
func (c *webConfig) describe() []any {
	clientAuth := ""
	if t := c.TLSServerConfig; t != nil {
		auth, _ := t.clientAuth()
		clientAuth = auth.String()
	}
	return []any{"tls", c.TLSServerConfig != nil, "client_auth", clientAuth, "basic_auth_users", len(c.BasicAuthUsers), "bearer_token", c.BearerTokenFile != ""}
}
