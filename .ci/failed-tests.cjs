// Prints each failed test of a vitest JSON report (argv[2]) on one line: file > test: first line of the error.
// A file that failed without a failed test (a hook, an import) is named with its own message.
const report = require(process.argv[2]);
const firstLine = (text) => String(text ?? '').split('\n')[0].slice(0, 300);
for (const file of report.testResults) {
  const failed = file.assertionResults.filter((a) => a.status === 'failed');
  if (file.status === 'failed' && failed.length === 0) console.log(`  FAILED ${file.name}: ${firstLine(file.message)}`);
  for (const a of failed) console.log(`  FAILED ${file.name} > ${a.fullName}: ${firstLine(a.failureMessages[0])}`);
}
