package downstream

import "github.com/cardinal-proxy/cardinal/config/setting"

// FileConfig is the local text-format sink, mostly for trying cardinal out
// (downstream.file).
type FileConfig struct {
	// Name labels the downstream in metrics (default "file").
	Name string `yaml:"name"`
	// Path is the file to append to, "-" for standard output; a relative path is resolved
	// against the config file's directory.
	Path string `yaml:"path"`
}

// Validate reports what is wrong with the file sink's settings.
func (c *FileConfig) Validate() error {
	if c.Path == "" {
		return setting.At("path").Errorf("downstream.file.path is required (\"-\" writes to standard output)")
	}
	return nil
}
