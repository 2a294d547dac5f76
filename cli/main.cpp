// Placeholder: replaced by the CLI (one file per command).
int main() { return 1; }
