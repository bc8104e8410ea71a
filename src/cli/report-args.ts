/** Where `report` writes when no `--out` is given: the working directory. */
export const DEFAULT_REPORT_PATH = 'report.html';
