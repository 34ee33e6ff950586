package config

import (
	"gopkg.in/yaml.v3"

	"github.com/cardinal-proxy/cardinal/config/setting"
	"github.com/cardinal-proxy/cardinal/rules"
)

// ruleFile is the document of a file named by rule_files.
type ruleFile struct {
	Rules []rules.RuleConfig `yaml:"rules"`
}

// ruleLocator finds the lines of one rule's keys in its document, for rules.Compile.
type ruleLocator struct {
	file string
	// node is the rule's mapping in its document.
	node *yaml.Node
}

// File implements rules.Locator.
func (l ruleLocator) File() string { return l.file }

// Line implements rules.Locator.
func (l ruleLocator) Line(key setting.Key) int { return lineOf(l.node, key...) }

// Written implements rules.Locator.
func (l ruleLocator) Written(key setting.Key) bool { return has(l.node, key...) }
