# Directive misuse must fail `apache2 -t` with a message naming the
# directive; a correct config must say "Syntax OK". Each row is a throwaway
# config in a temp dir that loads the module under test (PWTest::pw_module).
use strict;
use warnings FATAL => 'all';

use FindBin ();
use lib "$FindBin::Bin/perl";

use Apache::Test qw(-withtestmore);
use File::Temp ();
use PWTest qw(mpm pw_module pw_venv python_version configtest);

my $top   = Apache::Test::vars('top_dir');
my $mods  = '/usr/lib/apache2/modules';
my $mpm   = mpm() || 'prefork';
my $tmp   = File::Temp->newdir('pywsgi-config-XXXXXX', TMPDIR => 1);
my $app   = "$top/t/apps/env.py";
my $auth  = "$top/t/apps/auth_script.py";
my $venv  = pw_venv();

mkdir "$tmp/not-a-venv" or die "mkdir: $!";

# A virtualenv made by another Python version than the module's: its
# pyvenv.cfg says so (venv writes "version = X.Y.Z"; virtualenv writes
# "version_info"). One minor version up from the Python under test.
my ($major, $minor) = split /\./, python_version();
my $other = sprintf '%d.%d', $major, $minor + 1;
for my $d (["other-version", "version = $other.4\n"],
           ["other-version-info", "version_info = $other.4.final.0\n"]) {
    mkdir "$tmp/$d->[0]" or die "mkdir: $!";
    open my $fh, '>', "$tmp/$d->[0]/pyvenv.cfg" or die "pyvenv.cfg: $!";
    print $fh "home = /nonexistent/bin\ninclude-system-site-packages = false\n$d->[1]";
    close $fh;
}
my $mine = python_version();

# [name, config lines, expected exit (0 or 'non-zero'), qr// stderr must match]
my @rows = (
    ['valid config', <<"EOF", 0, qr/Syntax OK/],
PyWSGIVirtualEnv $venv
PyWSGIPythonPath $top/t/lib $top/t/apps
PyWSGIPassAuthorization On
PyWSGIScriptAlias /script $app
PyWSGIScriptAlias /alt $app callable=alt_application
PyWSGIScriptAlias /module pwtest.envdump:application
PyWSGIScriptAlias /asgi pwtest.envdump:application interface=asgi
PyWSGIScriptAlias /wsgi pwtest.envdump:application interface=wsgi
PyWSGIScriptAlias / pwtest.envdump
<VirtualHost 127.0.0.1:8599>
    PyWSGIScriptAlias /vhost $app
    PyWSGIPassAuthorization Off
    PyWSGIInheritMounts Off
    PyWSGIInterpreter %{SERVER}
    <Directory /tmp>
        PyWSGIInterpreter %{RESOURCE}
    </Directory>
</VirtualHost>
<Location /module>
    PyWSGIPassAuthorization Off
</Location>
<Location /pywsgi-status>
    SetHandler pywsgi-status
    PyWSGIStatus Host
</Location>
EOF
    ['PyWSGIVirtualEnv without pyvenv.cfg',
     "PyWSGIVirtualEnv $tmp/not-a-venv\n", 'non-zero',
     qr/PyWSGIVirtualEnv\b.*pyvenv\.cfg/],
    ['PyWSGIVirtualEnv made by another Python version (venv)',
     "PyWSGIVirtualEnv $tmp/other-version\n", 'non-zero',
     qr/PyWSGIVirtualEnv\b.*Python \Q$other\E\.4\b.*Python \Q$mine\E\b.*python\Q$mine\E -m venv/],
    ['PyWSGIVirtualEnv made by another Python version (virtualenv)',
     "PyWSGIVirtualEnv $tmp/other-version-info\n", 'non-zero',
     qr/PyWSGIVirtualEnv\b.*Python \Q$other\E\.4\b.*Python \Q$mine\E\b/],
    ['PyWSGIVirtualEnv on a missing directory',
     "PyWSGIVirtualEnv $tmp/missing\n", 'non-zero', qr/PyWSGIVirtualEnv/],
    ['PyWSGIScriptAlias with a missing file',
     "PyWSGIScriptAlias /x $tmp/no-such-app.py\n", 'non-zero',
     qr/PyWSGIScriptAlias\b.*no-such-app\.py/],
    ['PyWSGIScriptAlias with a relative URL-PATH',
     "PyWSGIScriptAlias x $app\n", 'non-zero', qr/PyWSGIScriptAlias/],
    ['PyWSGIScriptAlias with one argument',
     "PyWSGIScriptAlias /x\n", 'non-zero', qr/PyWSGIScriptAlias/],
    ['PyWSGIScriptAlias with a bad option',
     "PyWSGIScriptAlias /x $app foo=bar\n", 'non-zero',
     qr/PyWSGIScriptAlias\b.*foo/],
    ['PyWSGIScriptAlias with interface= neither wsgi nor asgi',
     "PyWSGIScriptAlias /x $app interface=rsgi\n", 'non-zero',
     qr/PyWSGIScriptAlias: interface= must be wsgi \(the default\) or asgi, not 'rsgi'/],
    ['PyWSGIVirtualEnv inside <VirtualHost>',
     "<VirtualHost 127.0.0.1:8599>\n    PyWSGIVirtualEnv $venv\n</VirtualHost>\n",
     'non-zero', qr/PyWSGIVirtualEnv/],
    ['PyWSGIPythonPath inside <VirtualHost>',
     "<VirtualHost 127.0.0.1:8599>\n    PyWSGIPythonPath $top/t/lib\n</VirtualHost>\n",
     'non-zero', qr/PyWSGIPythonPath/],
    ['PyWSGIStatus with a bad value',
     "<Location /s>\n    SetHandler pywsgi-status\n    PyWSGIStatus yes\n</Location>\n",
     'non-zero', qr/PyWSGIStatus: 'yes' is not Off, On or Host/],
    ['PyWSGIPassAuthorization with a bad value',
     "PyWSGIPassAuthorization maybe\n", 'non-zero',
     qr/PyWSGIPassAuthorization/],
    ['chunked request body directives, valid',
     "PyWSGIChunkedRequest Stream\nPyWSGIRequestBodyBuffer 0\n"
     . "PyWSGIRequestBodyTempDir $tmp\n<Location /x>\n"
     . "    PyWSGIChunkedRequest Buffer\n    PyWSGIRequestBodyBuffer 65536\n"
     . "</Location>\n", 0, qr/Syntax OK/],
    ['PyWSGIChunkedRequest with a bad value',
     "PyWSGIChunkedRequest Maybe\n", 'non-zero',
     qr/PyWSGIChunkedRequest: 'Maybe' is neither Buffer .* nor Stream/],
    ['PyWSGIRequestBodyBuffer not a number',
     "PyWSGIRequestBodyBuffer 1M\n", 'non-zero',
     qr/PyWSGIRequestBodyBuffer: '1M' is not a number of bytes/],
    ['PyWSGIRequestBodyBuffer too large',
     "PyWSGIRequestBodyBuffer 99999999999\n", 'non-zero',
     qr/PyWSGIRequestBodyBuffer: '99999999999' is not a number of bytes/],
    ['PyWSGIRequestBodyTempDir missing',
     "PyWSGIRequestBodyTempDir $tmp/missing\n", 'non-zero',
     qr/PyWSGIRequestBodyTempDir: '\S+missing' is not an existing directory/],
    ['PyWSGIRequestBodyTempDir relative',
     "PyWSGIRequestBodyTempDir tmp\n", 'non-zero',
     qr/PyWSGIRequestBodyTempDir: 'tmp' is not an existing directory given by its absolute path/],
    ['PyWSGIAuthScript with its providers', <<"EOF", 0, qr/Syntax OK/],
LoadModule authn_core_module $mods/mod_authn_core.so
LoadModule auth_basic_module $mods/mod_auth_basic.so
LoadModule auth_digest_module $mods/mod_auth_digest.so
LoadModule authz_user_module $mods/mod_authz_user.so
<Location /basic>
    AuthType Basic
    AuthName x
    AuthBasicProvider pywsgi
    PyWSGIAuthScript $auth interpreter=authsub
    Require pywsgi-group admins "power users"
</Location>
<Location /digest>
    AuthType Digest
    AuthName x
    AuthDigestProvider pywsgi
    PyWSGIAuthScript pwtest.envdump
    Require valid-user
</Location>
EOF
    ['PyWSGIAuthScript with a missing file',
     "<Location />\n    PyWSGIAuthScript $tmp/no-such-auth.py\n</Location>\n",
     'non-zero', qr/PyWSGIAuthScript\b.*no-such-auth\.py/],
    ['PyWSGIAuthScript naming a callable',
     "<Location />\n    PyWSGIAuthScript $auth:check_password\n</Location>\n",
     'non-zero', qr/PyWSGIAuthScript\b.*script or module only/],
    ['PyWSGIAuthScript with a bad option',
     "<Location />\n    PyWSGIAuthScript $auth group=x\n</Location>\n",
     'non-zero', qr/PyWSGIAuthScript\b.*group=x.*interpreter=NAME/],
    ['PyWSGIAuthScript without an argument',
     "<Location />\n    PyWSGIAuthScript\n</Location>\n",
     'non-zero', qr/PyWSGIAuthScript/],
    ['Require pywsgi-group without a group',
     "<Location />\n    Require pywsgi-group\n</Location>\n",
     'non-zero', qr/pywsgi-group needs one or more group names/],
    # Shared hosting (issue 16).
    ['PyWSGIInterpreter with an unknown expansion',
     "PyWSGIInterpreter %{NOPE}\n", 'non-zero',
     qr/PyWSGIInterpreter\b.*%\{SERVER\}.*%\{RESOURCE\}/],
    ['interpreter=%{RESOURCE} on an alias',
     "PyWSGIScriptAlias /x $app interpreter=%{RESOURCE}\n", 'non-zero',
     qr/PyWSGIScriptAlias\b.*%\{RESOURCE\}.*interpreter=NAME/],
    ['PyWSGIInheritMounts inside <Directory>',
     "<Directory /tmp>\n    PyWSGIInheritMounts Off\n</Directory>\n",
     'non-zero', qr/PyWSGIInheritMounts\b.*<VirtualHost>/],
    ['PyWSGIScriptAlias inside <Location>',
     "<Location /x>\n    PyWSGIScriptAlias /x $app\n</Location>\n",
     'non-zero', qr/PyWSGIScriptAlias\b.*<VirtualHost>/],
    ['PyWSGIPythonPath inside <Directory>',
     "<Directory /tmp>\n    PyWSGIPythonPath /tmp\n</Directory>\n",
     'non-zero', qr/PyWSGIPythonPath\b/],
    # A mass-hosting server must still start: the hosts past the limit get
    # a warning, and their handler-served files a 500 (PW0708).
    ['more virtual hosts than interpreters (one each for handler files)',
     join('', map { "<VirtualHost 127.0.0.1:8599>\n    ServerName h$_.test\n</VirtualHost>\n" } 1 .. 70),
     0, qr/PW0704: .*PyWSGIInterpreter NAME(?s:.*)Syntax OK/],
    ['many virtual hosts sharing one interpreter',
     "PyWSGIInterpreter tenants\n"
     . join('', map { "<VirtualHost 127.0.0.1:8599>\n    ServerName h$_.test\n</VirtualHost>\n" } 1 .. 64),
     0, qr/Syntax OK/],
);

# PyWSGIOwnGIL (PEP 684): refused before 3.12 whatever the name, and for
# main on any version (t/owngil.t has the rest).
push @rows, ($minor >= 12 || $major > 3)
    ? ['PyWSGIOwnGIL main', "PyWSGIOwnGIL main\n", 'non-zero',
       qr/PyWSGIOwnGIL main: main always shares its GIL.*name a sub-interpreter/]
    : ['PyWSGIOwnGIL before Python 3.12', "PyWSGIOwnGIL alpha\n", 'non-zero',
       qr/PyWSGIOwnGIL alpha: interpreters with their own GIL need Python 3\.12 or later.*remove PyWSGIOwnGIL/];

# interface=asgi in a sub-interpreter: asyncio runs a loop per interpreter
# from 3.12 on (t/asgi_interp.t serves there); refused before, saying why.
push @rows, ($minor >= 12 || $major > 3)
    ? ['PyWSGIScriptAlias interface=asgi in a sub-interpreter (3.12+)',
       "PyWSGIScriptAlias /x pwtest.envdump interface=asgi interpreter=iso\n",
       0, qr/Syntax OK/]
    : ['PyWSGIScriptAlias interface=asgi in a sub-interpreter before 3.12',
       "PyWSGIScriptAlias /x pwtest.envdump interface=asgi interpreter=iso\n",
       'non-zero',
       qr/PyWSGIScriptAlias: interface=asgi runs in the main interpreter only with Python \Q$mine\E[.\d+]* \(asyncio cannot run a loop in each of two interpreters before 3\.12\); drop interpreter=iso/];

plan tests => scalar @rows;


my $n = 0;
for my $row (@rows) {
    my ($name, $extra, $want_exit, $want_text) = @$row;
    subtest $name => sub {
        my ($exit, $text) = configtest("$tmp/" . ++$n, $extra);
        if ($want_exit eq '0') {
            is($exit, 0, 'exit status 0') or diag($text);
        }
        else {
            isnt($exit, 0, 'exit status non-zero') or diag($text);
        }
        like($text, $want_text, 'output') or diag($text);
        unlike($text, qr/Syntax OK/, 'no "Syntax OK"') if $want_exit ne '0';
    };
}
