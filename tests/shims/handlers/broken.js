'use strict';
// A handler file that fails at load time (load error).
throw new Error("broken on purpose: missing dependency 'nonexistent-lib'");
