// Package playbooks holds the declarative remediation playbooks: which trigger updates
// break IIS 6, which file versions they bring, the baseline the core IIS files must reach,
// the files known to stay older, the symptoms, the installer catalogue and the step
// settings. Playbooks are YAML, validated with file, line and field for every problem;
// kb982666 and kb973917 are embedded. The package is pure data and validation.
package playbooks
