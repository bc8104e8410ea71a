/**
 * One user as the users export gives it and `auth0.users` keeps it (dates as ISO strings): what
 * src/auth0/users-export.ts parses and src/warehouse/users-import.ts stages. It sits in core/,
 * below both, because auth0/ and warehouse/ never import each other.
 */
export interface ExportedUser {
  userId: string;
  email: string | null;
  connection: string | null;
  createdAt: string | null;
  lastLogin: string | null;
  blocked: boolean | null;
}
