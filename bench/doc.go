// Package bench is Switchboard's load generator and measurement harness
// (scenarios, latency histograms, reports). It is built in a later issue.
package bench
